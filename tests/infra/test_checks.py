"""cdk-nag (AwsSolutions) with every acknowledgment used and reasoned, cfn-lint, and the Lambda assets' contents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Assembly, synthesize

pytestmark = pytest.mark.infra

# What Lambda accepts for a function and its layers together, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def nag_report(assembly: Assembly) -> dict[str, Any]:
    (report,) = [r for r in assembly.validation_report()["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    return report


def test_cdk_nag_has_no_unacknowledged_findings(default_assembly: Assembly) -> None:
    report = nag_report(default_assembly)
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_every_acknowledgment_has_a_reason_and_matches_a_finding(default_assembly: Assembly) -> None:
    from arbiter_infra.nag import acknowledgments

    suppressed = nag_report(default_assembly)["suppressedViolations"]
    assert suppressed, "the stack is expected to acknowledge some findings (runtime, object keys)"
    for finding in suppressed:
        assert len(finding["reason"].split()) >= 10, finding
    used = {(finding["acknowledgedAt"], finding["ruleName"]) for finding in suppressed}
    declared = {(ack.path, ack.rule) for _, ack in acknowledgments(default_assembly.stack)}
    assert declared == used  # no acknowledgment without a finding: a stale one would hide a future finding


def test_only_the_expected_rules_are_acknowledged(default_assembly: Assembly) -> None:
    rules = {finding["ruleName"].split("[")[0] for finding in nag_report(default_assembly)["suppressedViolations"]}
    assert rules == {"AwsSolutions-L1", "AwsSolutions-IAM5"}


def test_cfn_lint_finds_no_errors(default_assembly: Assembly) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", str(default_assembly.template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors
    assert result.returncode & 2 == 0  # cfn-lint's exit code has bit 2 set when it found errors


def staged_assets(assembly: Assembly) -> dict[str, Path]:
    """The staged asset directories of the layer and the function code, by kind."""
    manifest = json.loads((assembly.outdir / f"{assembly.stack.stack_name}.assets.json").read_text())
    found: dict[str, Path] = {}
    for asset in manifest["files"].values():
        path = assembly.outdir / asset["source"]["path"]
        if path.is_dir():
            found["layer" if (path / "python").is_dir() else "code"] = path
    assert set(found) == {"layer", "code"}, found
    return found


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_assets_fit_lambda_and_leave_out_heavy_and_test_packages(default_assembly: Assembly) -> None:
    assets = staged_assets(default_assembly)
    assert tree_size(assets["layer"]) + tree_size(assets["code"]) < LAMBDA_UNZIPPED_LIMIT
    installed = {p.name.lower() for p in (assets["layer"] / "python").iterdir()}
    for package in ("strands", "pydantic", "boto3", "aws_lambda_powertools", "jsonschema"):
        assert package in installed, package
    for heavy in ("onnxruntime", "llama_cpp", "numpy", "torch", "pytest", "moto", "hypothesis", "aws_cdk"):
        assert heavy not in installed, heavy
    assert not list(assets["layer"].rglob("*.pyc"))


def test_function_code_is_the_four_packages(default_assembly: Assembly) -> None:
    code = staged_assets(default_assembly)["code"]
    assert not (code / ".complete").exists()  # the build's marker file stays out of the asset
    top = {p.name for p in code.iterdir()}
    assert top == {"arbiter", "blackboard", "wrapper", "fabricator", "arbiter_agents-0.1.0.dist-info"}
    assert (code / "wrapper" / "executor.py").is_file()
    assert not list(code.rglob("__pycache__"))


def test_pydantic_core_is_the_cp312_manylinux_build(default_assembly: Assembly) -> None:
    layer = staged_assets(default_assembly)["layer"] / "python"
    (wheel,) = list(layer.glob("pydantic_core-*.dist-info/WHEEL"))
    tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines() if line.startswith("Tag: ")]
    assert tags and all(tag.startswith("cp312-cp312-manylinux") and tag.endswith("x86_64") for tag in tags)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """A deployment with every option changed: a foundation model id, manual approval, own patterns, limits."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-variant"),
        {
            "aws:cdk:disable-asset-staging": True,
            "envName": "prod",
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "fabricatorModelId": "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "approval": "manual",
            "ingressPatterns": '[{"source": ["shop.orders"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]',
            "maxReceiveCount": "5",
            "wrapperTimeoutSeconds": "60",
            "wrapperReservedConcurrency": "20",
            "wrapperMaxConcurrency": "15",
            "deletionProtection": "false",
            "removalPolicy": "destroy",
            "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:oncall",
        },
    )


def test_variant_passes_nag_and_acknowledges_only_what_it_needs(variant: Assembly) -> None:
    report = nag_report(variant)
    assert report["violations"] == []
    bedrock_acks = {
        (f["acknowledgedAt"].rsplit("/", 1)[-1], f["ruleName"])
        for f in report["suppressedViolations"]
        if "bedrock" in f["ruleName"]
    }
    # Only the Fabricator uses a cross-region profile here; the others have a foundation model in one region.
    assert bedrock_acks == {
        (
            "FabricatorRole",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/"
            "anthropic.claude-3-7-sonnet-20250219-v1:0]",
        )
    }


def test_variant_settings_reach_the_template(variant: Assembly) -> None:
    template = variant.template_json()
    resources = template["Resources"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for value in resources.values():
        by_type.setdefault(value["Type"], []).append(value)
    assert variant.stack.stack_name == "arbiter-prod"
    patterns = [r["Properties"].get("EventPattern") for r in by_type["AWS::Events::Rule"]]
    assert {"source": ["shop.orders"]} in patterns
    assert {"detail-type": ["CloudWatch Alarm State Change"]} in patterns
    functions = {f["Properties"]["Handler"]: f["Properties"] for f in by_type["AWS::Lambda::Function"]}
    wrapper = {"Properties": functions["wrapper.aws_lambda.handler"]}
    assert wrapper["Properties"]["ReservedConcurrentExecutions"] == 20
    sandbox = functions["wrapper.sandbox_function.handler"]
    assert (sandbox["Timeout"], sandbox["ReservedConcurrentExecutions"]) == (45, 17)  # follows its callers
    assert wrapper["Properties"]["Timeout"] == 60
    assert wrapper["Properties"]["Environment"]["Variables"]["ARBITER_APPROVAL"] == "manual"
    assert {q["Properties"].get("VisibilityTimeout") for q in by_type["AWS::SQS::Queue"]} >= {360}
    receives = {
        q["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        for q in by_type["AWS::SQS::Queue"]
        if "RedrivePolicy" in q["Properties"]
    }
    assert receives == {5}
    for table in by_type["AWS::DynamoDB::Table"]:
        assert table["Properties"]["DeletionProtectionEnabled"] is False
        assert table["DeletionPolicy"] == "Delete"
    assert all(
        a["Properties"]["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:oncall"]
        for a in by_type["AWS::CloudWatch::Alarm"]
    )
    arbiter = next(f for f in by_type["AWS::Lambda::Function"] if f["Properties"]["Handler"].startswith("arbiter."))
    assert arbiter["Properties"]["Environment"]["Variables"]["ARBITER_MODEL"] == (
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0"
    )
