"""DynamoDB stores, each behind a Protocol with an in-memory twin for fast unit tests."""
