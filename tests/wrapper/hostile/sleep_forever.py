"""Never returns: the wall-clock timeout must end it."""

import time


def handler():
    while True:
        time.sleep(3600)
