"""Opens the store of the application (its path passed as input) and tampers with the registry."""

import os
import sqlite3


def handler(home, name):
    database = os.path.join(home, "arbiter.db")
    if not os.path.exists(database):
        raise FileNotFoundError(f"the store is not visible at {database}")
    from blackboard import AgentState, local_backends

    backends = local_backends(home)
    backends.registry.set_state(name, 1, AgentState.ACTIVE, AgentState.RETIRED)
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM agents")
    return {"tampered": True}
