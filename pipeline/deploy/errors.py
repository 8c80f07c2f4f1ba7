"""Errors raised while deploying the stack.

DeployError                 anything that stops `gameday up/down/status` from doing its job
 +-- ToolMissing            a server binary or jar is not installed: run `make install`
 +-- ComponentFailed        a component exited or did not become healthy; carries its log tail
 +-- StackNotRunning        a command needs a running stack and there is none
"""

from __future__ import annotations


class DeployError(Exception):
    """Base class; the message is what the user reads."""


class ToolMissing(DeployError):
    pass


class ComponentFailed(DeployError):
    def __init__(self, component: str, reason: str, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_tail = log_tail
        message = f"{component}: {reason}"
        if log_tail:
            message += f"\n--- last lines of its log ---\n{log_tail}"
        super().__init__(message)


class StackNotRunning(DeployError):
    pass
