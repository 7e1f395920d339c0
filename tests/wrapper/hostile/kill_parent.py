"""Kills its parent (the zygote) with SIGKILL."""

import os
import signal


def handler():
    os.kill(os.getppid(), signal.SIGKILL)
    return {"killed": os.getppid()}
