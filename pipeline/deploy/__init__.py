"""How the pipeline and its infrastructure are started: the `Deployment` seam and its targets."""

from pipeline.deploy.base import Deployment, ServiceStatus, StackStatus
from pipeline.deploy.compose import ComposeDeployment
from pipeline.deploy.engine import ContainerState, Engine
from pipeline.deploy.errors import ComponentFailed, DeployError, StackNotRunning, ToolMissing
from pipeline.deploy.local import LocalDeployment
from pipeline.deploy.targets import TARGETS, Stack, open_deployment, recorded_target
from pipeline.deploy.tools import Tools
from pipeline.deploy.toxiproxy import Proxy, Toxic, Toxiproxy, ToxiproxyError

__all__ = [
    "TARGETS",
    "ComponentFailed",
    "ComposeDeployment",
    "ContainerState",
    "DeployError",
    "Deployment",
    "Engine",
    "LocalDeployment",
    "Proxy",
    "ServiceStatus",
    "Stack",
    "StackNotRunning",
    "StackStatus",
    "ToolMissing",
    "Tools",
    "Toxic",
    "Toxiproxy",
    "ToxiproxyError",
    "open_deployment",
    "recorded_target",
]
