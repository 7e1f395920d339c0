"""Leaves without a word."""

import os


def handler():
    os._exit(0)
