"""How the pipeline and its infrastructure are started: the `Deployment` seam and its targets."""

from pipeline.deploy.base import Deployment, ServiceStatus, StackStatus
from pipeline.deploy.errors import ComponentFailed, DeployError, StackNotRunning, ToolMissing
from pipeline.deploy.local import LocalDeployment
from pipeline.deploy.tools import Tools
from pipeline.deploy.toxiproxy import Proxy, Toxic, Toxiproxy, ToxiproxyError

__all__ = [
    "ComponentFailed",
    "DeployError",
    "Deployment",
    "LocalDeployment",
    "Proxy",
    "ServiceStatus",
    "StackNotRunning",
    "StackStatus",
    "ToolMissing",
    "Tools",
    "Toxic",
    "Toxiproxy",
    "ToxiproxyError",
]
