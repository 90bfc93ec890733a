"""The KMS key policy and the IAM documents as plain data."""

from components.policies import KEY_USE_ACTIONS, table_key_policy
from policy.rules import arn_condition_problems, key_policy_problems, wildcard_problems


def statements(policy: dict) -> dict:
    return {s["Sid"]: s for s in policy["Statement"]}


def test_key_policy_scopes_data_use_to_dynamodb_in_one_region_and_account():
    policy = table_key_policy("111122223333", "eu-west-1", "aws")
    by_sid = statements(policy)
    admin, use, grants = by_sid["KeyAdministration"], by_sid["UseThroughDynamoDBOnly"], by_sid["GrantsForDynamoDBOnly"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert "kms:*" not in admin["Action"]
    assert not set(admin["Action"]) & {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
    assert sorted(use["Action"] + [grants["Action"]]) == sorted(KEY_USE_ACTIONS)
    for statement in (use, grants):
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == "dynamodb.eu-west-1.amazonaws.com"
        assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == "111122223333"


def test_other_services_use_the_key_only_through_iam_and_only_in_their_region():
    by_sid = statements(table_key_policy("111122223333", "eu-west-1", "aws"))
    use = by_sid["IamGrantedUseThroughLambdaSqsSecretsManager"]
    assert use["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}, "delegated to IAM, not to anyone"
    assert use["Condition"]["StringEquals"] == {
        "kms:ViaService": [
            "lambda.eu-west-1.amazonaws.com",
            "sqs.eu-west-1.amazonaws.com",
            "secretsmanager.eu-west-1.amazonaws.com",
        ],
        "kms:CallerAccount": "111122223333",
    }
    grants = by_sid["IamGrantedGrantsThroughLambdaOnly"]
    assert grants["Action"] == "kms:CreateGrant"
    assert grants["Condition"]["StringEquals"]["kms:ViaService"] == "lambda.eu-west-1.amazonaws.com"
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    alarms = by_sid["AlarmsPublishToEncryptedTopics"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "LogsForTheStacksLogGroups" not in by_sid, "no log group prefixes, no grant to CloudWatch Logs"


def test_cloudwatch_logs_may_use_the_key_for_the_stacks_log_groups_only():
    policy = table_key_policy("111122223333", "eu-west-1", "aws", ["/agent-infra/dev/", "/aws/vendedlogs/states/x-"])
    logs = statements(policy)["LogsForTheStacksLogGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": [
                "arn:aws:logs:eu-west-1:111122223333:log-group:/agent-infra/dev/*",
                "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/vendedlogs/states/x-*",
            ]
        }
    }
    assert key_policy_problems(policy) == []
    assert arn_condition_problems(policy) == []


def test_key_policy_problems_refuse_wildcard_actions_but_not_the_keys_own_resource():
    assert key_policy_problems(
        {"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    ) == ["A: action kms:*"]
    assert key_policy_problems({"Statement": [{"Sid": "N", "Effect": "Allow", "NotAction": "kms:Decrypt"}]}) == [
        "N: NotAction allows everything it does not name"
    ]


def test_arn_condition_problems_find_string_operators_on_arn_keys():
    document = {
        "Statement": [
            {"Sid": "S", "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:sns:*:1:t"}}},
            {"Sid": "B", "Condition": {"StringLike": {"bedrock:InferenceProfileArn": "arn:aws:bedrock:*"}}},
            {"Sid": "K", "Condition": {"StringLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:*"}}},
            {"Sid": "OK", "Condition": {"StringEquals": {"aws:SourceAccount": "1"}, "ArnLike": {"aws:SourceArn": "x"}}},
        ]
    }
    assert arn_condition_problems(document) == [
        "S: StringLike on aws:SourceArn; use ArnLike/ArnEquals",
        "B: StringLike on bedrock:InferenceProfileArn; use ArnLike/ArnEquals",
        "K: StringLike on kms:EncryptionContext:aws:logs:arn; use ArnLike/ArnEquals",
    ]


def test_key_policy_follows_the_partition():
    policy = table_key_policy("111122223333", "cn-north-1", "aws-cn")
    assert policy["Statement"][0]["Principal"] == {"AWS": "arn:aws-cn:iam::111122223333:root"}
    assert (
        policy["Statement"][1]["Condition"]["StringEquals"]["kms:ViaService"] == "dynamodb.cn-north-1.amazonaws.com.cn"
    )


def test_wildcard_problems_finds_star_actions_and_avoidable_star_resources():
    from components.policies import policy, statement

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
    assert wildcard_problems(
        {"Statement": [{"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    ) == ["N: NotAction allows everything it does not name"]
    assert wildcard_problems({"Statement": [{"Sid": "E", "Effect": "Allow", "Action": "sqs:SendMessage"}]}) == [
        "E: names no resource"
    ]
    assert wildcard_problems({"Statement": [{"Sid": "D", "Effect": "Deny", "Action": "*", "Resource": "*"}]}) == [], (
        "a Deny only takes away"
    )


def test_bedrock_profiles_allow_the_base_model_only_through_the_profile():
    from components.policies import bedrock_invoke

    profile = bedrock_invoke("us.anthropic.claude-x-v1:0", ["us-east-1", "us-west-2"], "111122223333")
    assert profile[0]["Resource"] == [
        "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.anthropic.claude-x-v1:0",
        "arn:aws:bedrock:us-west-2:111122223333:inference-profile/us.anthropic.claude-x-v1:0",
    ]
    assert profile[1]["Resource"] == ["arn:aws:bedrock:*::foundation-model/anthropic.claude-x-v1:0"]
    assert profile[1]["Condition"]["ArnLike"]["bedrock:InferenceProfileArn"].endswith(
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
