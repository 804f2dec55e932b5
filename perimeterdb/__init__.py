"""perimeterdb: a DynamoDB-compatible database with AWS's access-control model built in."""

__version__ = "0.1.0"
