"""Shared fixtures: fake AWS credentials, a moto table built from the shared key schema."""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws

from handlers.shared.store import Store
from handlers.shared.table import TABLE_SCHEMA
from local.dynamodb.guard import DynamoDBGuard

TABLE_NAME = "agent-infra-test"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """No test may reach a real account: fake credentials, a fixed region, no profiles."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def dynamodb(aws_credentials):
    """A moto DynamoDB client with the agent table created from TABLE_SCHEMA.

    Guarded (local/dynamodb/guard.py) as in the local stack: moto checks a ConditionExpression
    and writes in two steps, so two threads could both pass one check; DynamoDB evaluates the
    condition and writes atomically, and under the guard each request to a table runs whole.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate
    """
    with mock_aws(), DynamoDBGuard():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**TABLE_SCHEMA.create_table_request(TABLE_NAME))
        yield client


@pytest.fixture
def store(dynamodb):
    return Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb)
