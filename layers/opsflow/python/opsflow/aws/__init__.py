"""Small adapters over boto3, one per service. Domain code calls AWS only through these."""
