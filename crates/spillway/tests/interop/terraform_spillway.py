"""A user's Terraform applied to spillway itself, and run. Two shapes
(SPILLWAY_TF_SHAPE):

- `deploy`: the project's deploy/terraform, with the Rust reference function
  (SPILLWAY_FUNCTION_BINARY) zipped as a `provided.al2023` package;
- `reference`: the reference write-up's plain Terraform (terraform_reference/main.tf),
  with its Python function (tests/functions/reference_handler.py as
  `lambda_function.py`) on python3.12.

Steps: `init` from a local provider mirror, `apply` with every AWS endpoint pointed at
a running spillway (SPILLWAY_ENDPOINT, started by tests/terraform.rs with no pipeline
of its own); then POSTs to the deployed stage must each land exactly
once in the table, through API Gateway's Kinesis integration, the stream, the event
source mapping and the function; a second `plan` must find nothing to change; and
`destroy` must remove everything.

Needs terraform on PATH and the hashicorp/aws provider in a local plugin directory
(see terraform_moto.py, whose helpers this script shares).
"""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.request
import zipfile
from pathlib import Path

import boto3
import botocore
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from terraform_moto import REGION, TF_SOURCE, find_plugin_dir, log, run  # noqa: E402

ENDPOINT = os.environ["SPILLWAY_ENDPOINT"]
SHAPE = os.environ.get("SPILLWAY_TF_SHAPE", "deploy")
HERE = Path(__file__).resolve().parent
STREAM_NAME = "example-stream"
TABLE_NAME = "example-table"
FUNCTION_NAME = "kinesis_to_dynamo"
STAGE_NAME = "dev"
POSTS = 30


def function_zip(path):
    """The function's package: the Rust function as a provided.al2023 `bootstrap`, or
    the reference's Python handler as `lambda_function.py`."""
    if SHAPE == "deploy":
        name, data, mode = "bootstrap", Path(os.environ["SPILLWAY_FUNCTION_BINARY"]).read_bytes(), 0o755
    else:
        name, data, mode = "lambda_function.py", (HERE.parent / "functions" / "reference_handler.py").read_bytes(), 0o644
    entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    entry.external_attr = (0o100000 | mode) << 16
    entry.create_system = 3
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(entry, data)
    return path


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}),
    )


class TerraformSpillway(unittest.TestCase):
    """Test methods run in name order: apply, POSTs, plan, destroy."""

    @classmethod
    def setUpClass(cls):
        cls.terraform = shutil.which("terraform")
        if not cls.terraform:
            raise unittest.SkipTest("terraform is not on PATH")
        cls.tmp = tempfile.mkdtemp(prefix="spillway-tf-")
        cls.workdir = Path(cls.tmp) / "terraform"
        shutil.copytree(
            TF_SOURCE if SHAPE == "deploy" else HERE / "terraform_reference",
            cls.workdir,
            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
        )
        zip_path = function_zip(Path(cls.tmp) / "function.zip")
        init = [cls.terraform, "init", "-backend=false", "-input=false", "-no-color"]
        plugin_dir = find_plugin_dir()
        if plugin_dir:
            init.append(f"-plugin-dir={plugin_dir}")
        run(init, cls.workdir, 180)
        if SHAPE == "deploy":
            cls.vars = [
                "-var", f"aws_endpoint={ENDPOINT}",
                "-var", f"function_zip={zip_path}",
                "-var", f"region={REGION}",
            ]
        else:
            cls.vars = ["-var", f"endpoint={ENDPOINT}", "-var", f"function_zip={zip_path}"]
        started = time.monotonic()
        run([cls.terraform, "apply", "-auto-approve", "-input=false", "-no-color", *cls.vars],
            cls.workdir, 300)
        log(f"terraform apply ({SHAPE}) against spillway took {time.monotonic() - started:.1f}s")
        out, _ = run([cls.terraform, "output", "-json"], cls.workdir, 60)
        cls.outputs = {k: v["value"] for k, v in json.loads(out.stdout).items()}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    def test_10_posts_to_the_stage_land_once_in_the_table(self):
        api_id = self.outputs["rest_api_id"]
        url = f"{ENDPOINT}/_aws/execute-api/{api_id}/{STAGE_NAME}/"
        sent = []
        for i in range(POSTS):
            body = json.dumps({"message": f"terraform-{i}"})
            sent.append(f"terraform-{i}")
            req = urllib.request.Request(url, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                self.assertEqual(r.status, 200)
                answer = json.loads(r.read())
                self.assertIn("SequenceNumber", answer)
        dynamodb = client("dynamodb")
        deadline = time.monotonic() + 60
        while True:
            items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
            if len(items) >= POSTS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(1)  # anything more would be a duplicate
        items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
        messages = sorted(i["Message"]["S"] for i in items)
        self.assertEqual(messages, sorted(sent))

    def test_20_function_and_mapping_are_described(self):
        if SHAPE != "deploy":
            self.skipTest("the reference's shape has no outputs for these")
        lam = client("lambda")
        conf = lam.get_function(FunctionName=FUNCTION_NAME)["Configuration"]
        self.assertEqual(conf["Runtime"], "provided.al2023")
        self.assertEqual(conf["Environment"]["Variables"], {"TABLE_NAME": TABLE_NAME})
        m = lam.get_event_source_mapping(UUID=self.outputs["event_source_mapping_uuid"])
        self.assertEqual(m["State"], "Enabled")
        self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])

    def test_80_plan_is_empty_after_apply(self):
        out, _ = run(
            [self.terraform, "plan", "-detailed-exitcode", "-input=false", "-no-color", *self.vars],
            self.workdir, 180, check=False,
        )
        report = "plan after apply:\n" + out.stdout[-6000:] + out.stderr[-3000:]
        if SHAPE == "deploy":
            self.assertEqual(out.returncode, 0, report)
            return
        # The reference hashes the whole integration resource into the deployment's
        # triggers; a refresh turns its unset cache_key_parameters and
        # request_parameters from null into empty values (the provider does this at AWS
        # too), so its second plan redeploys and nothing else. deploy/terraform hashes
        # only the arguments it sets for this reason.
        self.assertIn(out.returncode, (0, 2), report)
        if out.returncode == 2:
            self.assertIn("Plan: 1 to add, 1 to change, 1 to destroy.", out.stdout, report)
            self.assertIn("aws_api_gateway_deployment.example_deployment must be replaced", out.stdout, report)

    def test_90_destroy_removes_everything(self):
        run([self.terraform, "destroy", "-auto-approve", "-input=false", "-no-color", *self.vars],
            self.workdir, 240)
        self.assertEqual(client("lambda").list_functions()["Functions"], [])
        self.assertNotIn(STREAM_NAME, client("kinesis").list_streams()["StreamNames"])
        self.assertNotIn(TABLE_NAME, client("dynamodb").list_tables()["TableNames"])
        self.assertEqual(client("apigateway").get_rest_apis()["items"], [])
        self.assertEqual(client("iam").list_roles()["Roles"], [])
        if SHAPE == "deploy":
            self.assertEqual(client("sqs").list_queues().get("QueueUrls", []), [])


if __name__ == "__main__":
    result = unittest.TextTestRunner(verbosity=2).run(
        unittest.TestLoader().loadTestsFromTestCase(TerraformSpillway))
    raise SystemExit(0 if result.wasSuccessful() else 1)
