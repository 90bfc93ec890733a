"""DynamoDB: ``guard`` makes moto's tables safe for concurrent callers; ``global_tables`` joins
one table per local region into a global table."""
