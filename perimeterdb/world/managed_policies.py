"""The AWS-managed policies perimeterdb ships, with their real documents.

Documents as AWS publishes them (default versions: AdministratorAccess v1, AmazonDynamoDBFullAccess v15,
AmazonDynamoDBReadOnlyAccess v14). ReadOnlyAccess is abridged: AWS's document lists read actions of
every service in one Allow statement; we keep that statement shape but only the actions of the services
perimeterdb speaks (dynamodb, iam, sts, organizations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    name: str
    policy_id: str
    version_id: str
    created: str  # ISO 8601, the policy's creation date
    updated: str  # ISO 8601, the default version's date
    description: str
    document: str  # JSON text
    path: str = "/"

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::aws:policy{self.path}{self.name}"


def _doc(statements: list[dict[str, object]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=4)


_ADMIN = _doc([{"Effect": "Allow", "Action": "*", "Resource": "*"}])

_DDB_FULL = _doc(
    [
        {
            "Action": [
                "dynamodb:*",
                "dax:*",
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingActivities",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:RegisterScalableTarget",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarmHistory",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:DescribeAlarmsForMetric",
                "cloudwatch:GetMetricStatistics",
                "cloudwatch:ListMetrics",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:GetMetricData",
                "datapipeline:ActivatePipeline",
                "datapipeline:CreatePipeline",
                "datapipeline:DeletePipeline",
                "datapipeline:DescribeObjects",
                "datapipeline:DescribePipelines",
                "datapipeline:GetPipelineDefinition",
                "datapipeline:ListPipelines",
                "datapipeline:PutPipelineDefinition",
                "datapipeline:QueryObjects",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "iam:GetRole",
                "iam:ListRoles",
                "kms:DescribeKey",
                "kms:ListAliases",
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:ListSubscriptions",
                "sns:ListSubscriptionsByTopic",
                "sns:ListTopics",
                "sns:Subscribe",
                "sns:Unsubscribe",
                "sns:SetTopicAttributes",
                "lambda:CreateFunction",
                "lambda:ListFunctions",
                "lambda:ListEventSourceMappings",
                "lambda:CreateEventSourceMapping",
                "lambda:DeleteEventSourceMapping",
                "lambda:GetFunctionConfiguration",
                "lambda:DeleteFunction",
                "resource-groups:ListGroups",
                "resource-groups:ListGroupResources",
                "resource-groups:GetGroup",
                "resource-groups:GetGroupQuery",
                "resource-groups:DeleteGroup",
                "resource-groups:CreateGroup",
                "tag:GetResources",
                "kinesis:ListStreams",
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
            ],
            "Effect": "Allow",
            "Resource": "*",
        },
        {
            "Action": "cloudwatch:GetInsightRuleReport",
            "Effect": "Allow",
            "Resource": "arn:aws:cloudwatch:*:*:insight-rule/DynamoDBContributorInsights*",
        },
        {
            "Action": ["iam:PassRole"],
            "Effect": "Allow",
            "Resource": "*",
            "Condition": {
                "StringLike": {
                    "iam:PassedToService": [
                        "application-autoscaling.amazonaws.com",
                        "application-autoscaling.amazonaws.com.cn",
                        "dax.amazonaws.com",
                    ]
                }
            },
        },
        {
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        "replication.dynamodb.amazonaws.com",
                        "dax.amazonaws.com",
                        "dynamodb.application-autoscaling.amazonaws.com",
                        "contributorinsights.dynamodb.amazonaws.com",
                        "kinesisreplication.dynamodb.amazonaws.com",
                    ]
                }
            },
        },
    ]
)

_DDB_READ = _doc(
    [
        {
            "Sid": "GeneralReadOnlyAccess",
            "Action": [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingActivities",
                "application-autoscaling:DescribeScalingPolicies",
                "cloudwatch:DescribeAlarmHistory",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:DescribeAlarmsForMetric",
                "cloudwatch:GetMetricStatistics",
                "cloudwatch:ListMetrics",
                "cloudwatch:GetMetricData",
                "datapipeline:DescribeObjects",
                "datapipeline:DescribePipelines",
                "datapipeline:GetPipelineDefinition",
                "datapipeline:ListPipelines",
                "datapipeline:QueryObjects",
                "dynamodb:BatchGetItem",
                "dynamodb:Describe*",
                "dynamodb:List*",
                "dynamodb:GetItem",
                "dynamodb:GetResourcePolicy",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:PartiQLSelect",
                "dax:Describe*",
                "dax:List*",
                "dax:GetItem",
                "dax:BatchGetItem",
                "dax:Query",
                "dax:Scan",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "iam:GetRole",
                "iam:ListRoles",
                "kms:DescribeKey",
                "kms:ListAliases",
                "sns:ListSubscriptionsByTopic",
                "sns:ListTopics",
                "lambda:ListFunctions",
                "lambda:ListEventSourceMappings",
                "lambda:GetFunctionConfiguration",
                "resource-groups:ListGroups",
                "resource-groups:ListGroupResources",
                "resource-groups:GetGroup",
                "resource-groups:GetGroupQuery",
                "tag:GetResources",
                "kinesis:ListStreams",
                "kinesis:DescribeStream",
                "kinesis:DescribeStreamSummary",
            ],
            "Effect": "Allow",
            "Resource": "*",
        },
        {
            "Sid": "CCIAccess",
            "Action": "cloudwatch:GetInsightRuleReport",
            "Effect": "Allow",
            "Resource": "arn:aws:cloudwatch:*:*:insight-rule/DynamoDBContributorInsights*",
        },
    ]
)

# Abridged: only the dynamodb, iam, organizations and sts entries of AWS's single Allow statement.
_READ_ONLY = _doc(
    [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGet*",
                "dynamodb:Describe*",
                "dynamodb:Get*",
                "dynamodb:List*",
                "dynamodb:Query",
                "dynamodb:Scan",
                "iam:Generate*",
                "iam:Get*",
                "iam:List*",
                "iam:Simulate*",
                "organizations:Describe*",
                "organizations:List*",
                "sts:GetAccessKeyInfo",
                "sts:GetCallerIdentity",
                "sts:GetSessionToken",
            ],
            "Resource": "*",
        }
    ]
)

MANAGED_POLICIES: dict[str, ManagedPolicy] = {
    p.arn: p
    for p in (
        ManagedPolicy(
            "AdministratorAccess",
            "ANPAIWMBCKSKIEE64ZLYK",
            "v1",
            "2015-02-06T18:39:46Z",
            "2015-02-06T18:39:46Z",
            "Provides full access to AWS services and resources.",
            _ADMIN,
        ),
        ManagedPolicy(
            "AmazonDynamoDBFullAccess",
            "ANPAINUGF2JSOSUY76KYA",
            "v15",
            "2015-02-06T18:40:11Z",
            "2021-01-29T17:38:30Z",
            "Provides full access to Amazon DynamoDB via the AWS Management Console.",
            _DDB_FULL,
        ),
        ManagedPolicy(
            "AmazonDynamoDBReadOnlyAccess",
            "ANPAIY2XFNA232XJ6J7X2",
            "v14",
            "2015-02-06T18:40:12Z",
            "2024-03-20T15:45:01Z",
            "Provides read only access to Amazon DynamoDB via the AWS Management Console.",
            _DDB_READ,
        ),
        ManagedPolicy(
            "ReadOnlyAccess",
            "ANPAILL3HVNFSB6DCOWYQ",
            "v1",
            "2015-02-06T18:39:48Z",
            "2015-02-06T18:39:48Z",
            "Provides read-only access to AWS services and resources.",
            _READ_ONLY,
        ),
    )
}


def managed_policy(arn: str) -> ManagedPolicy | None:
    return MANAGED_POLICIES.get(arn)
