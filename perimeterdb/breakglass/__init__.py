"""The break-glass procedure: approvals, lineage, revocation, alert queueing (and H3's outbox and review).

Modules: ``approvals`` (request, approve, deny, grants), ``lineage`` (what derives from a break-glass session,
and what it created), ``revocation`` (revoke sessions and what derives from them), ``alerting`` (queue an
alert durably before what it reports takes effect), ``http`` (the SigV4 JSON API).
"""
