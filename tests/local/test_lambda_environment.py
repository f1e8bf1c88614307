"""Each invocation runs with its function's environment. A variable the process did not have is emptied
after the invocation (removing it could break another thread iterating the environment) and removed when
the runtime closes, so nothing of a deployment is left in the process."""

from __future__ import annotations

import os
from pathlib import Path

from opsflow_local.lambdas import DeployedFunction, LambdaRouter


def test_a_functions_variables_are_set_for_its_invocation_emptied_after_and_gone_once_closed(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(
        "import os\n\ndef handler(event, context):\n    return os.environ['OPSFLOW_TEST_ONLY_TABLE']\n"
    )
    router = LambdaRouter(base_environment={})
    router.register(
        DeployedFunction(
            "fn",
            "arn:aws:lambda:us-east-1:123456789012:function:fn",
            tmp_path,
            "app.handler",
            {"OPSFLOW_TEST_ONLY_TABLE": "runs"},
        )
    )
    router.install()
    try:
        assert router.invoke("fn", {}) == "runs"
        assert os.environ["OPSFLOW_TEST_ONLY_TABLE"] == ""
    finally:
        router.uninstall()
    assert "OPSFLOW_TEST_ONLY_TABLE" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ
