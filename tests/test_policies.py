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


def test_wildcard_problems_finds_star_actions_and_avoidable_star_resources():
    from components.policies import policy, statement, wildcard_problems

    assert wildcard_problems(policy(statement("X", ["xray:PutTraceSegments"], ["*"]))) == []
    assert wildcard_problems(policy(statement("A", ["dynamodb:*"], ["arn:aws:dynamodb:us-east-1:1:table/t"]))) == [
        "A: action dynamodb:*"
    ]
    assert wildcard_problems(policy(statement("R", ["dynamodb:GetItem"], ["*"]))) == [
        "R: resource * for ['dynamodb:GetItem']"
    ]
    assert wildcard_problems({"Statement": [{"Sid": "S", "Action": "*", "Resource": "*"}]}) == [
        "S: action *",
        "S: resource * for ['*']",
    ]


def test_bedrock_profiles_allow_the_base_model_only_through_the_profile():
    from components.policies import bedrock_invoke

    profile = bedrock_invoke("us.anthropic.claude-x-v1:0", ["us-east-1", "us-west-2"], "111122223333")
    assert profile[0]["Resource"] == [
        "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-x-v1:0",
        "arn:aws:bedrock:us-west-2:111122223333:inference-profile/us.anthropic.claude-x-v1:0",
    ]
    assert profile[1]["Resource"] == ["arn:aws:bedrock:*::foundation-model/anthropic.claude-x-v1:0"]
    assert profile[1]["Condition"]["StringLike"]["bedrock:InferenceProfileArn"].endswith(
        "inference-profile/us.anthropic.claude-x-v1:0"
    )
    plain = bedrock_invoke("anthropic.claude-x-v1:0", ["eu-west-1"], "111122223333")
    assert plain == [
        {
            "Sid": "InvokeModel",
            "Effect": "Allow",
            "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            "Resource": ["arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-x-v1:0"],
        }
    ]
