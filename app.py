"""CDK entry point (`cdk synth`, `cdk deploy`): the Sutram stack for the workflows in workflows/."""

import os
from pathlib import Path

from aws_cdk import App, Environment

from infra import constants, nag
from infra.stack import SutramStack

app = App()
nag.check(app)
SutramStack(
    app,
    constants.STACK_NAME,
    workflows_dir=Path("workflows"),
    env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
)
app.synth()
