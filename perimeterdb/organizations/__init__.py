"""AWS Organizations: one organization, its root, OUs, accounts, SCPs and RCPs.

- ``state``: the organization as one value with its pure transitions (raising Organizations' errors);
- ``store``: that value in storage, changed by atomic read-modify-write, with a generation counter;
- ``view``: what the authorizer reads (``placement(account)``: org paths and compiled policy levels);
- ``api``: the JSON 1.1 operations; ``http``: the request path for ``AWSOrganizationsV20161128.*``.
"""
