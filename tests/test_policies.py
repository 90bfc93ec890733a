"""The KMS key policy as plain data."""

from components.policies import KEY_USE_ACTIONS, table_key_policy


def test_key_policy_scopes_data_use_to_dynamodb_in_one_region_and_account():
    policy = table_key_policy("111122223333", "eu-west-1", "aws")
    admin, use, grants = policy["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert "kms:*" not in admin["Action"]
    assert not set(admin["Action"]) & {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
    assert sorted(use["Action"] + [grants["Action"]]) == sorted(KEY_USE_ACTIONS)
    for statement in (use, grants):
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == "dynamodb.eu-west-1.amazonaws.com"
        assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == "111122223333"


def test_key_policy_follows_the_partition():
    policy = table_key_policy("111122223333", "cn-north-1", "aws-cn")
    assert policy["Statement"][0]["Principal"] == {"AWS": "arn:aws-cn:iam::111122223333:root"}
    assert (
        policy["Statement"][1]["Condition"]["StringEquals"]["kms:ViaService"] == "dynamodb.cn-north-1.amazonaws.com.cn"
    )
