"""The agent: wuCME-active renews, loads and reports daily; wuCME-standby waits to take over.

`wucme agent` (wucme/verbs/agent.py) and the proctored-script start (wucme/cli.py) both end in
`wucme.agent.__main__.main`, which imports only what waiting needs; the daily cycle runs in a
child process (wucme.agent.cycle).  Manual: docs/agent.md.
"""
from __future__ import annotations

from wucme.agent.process import ACTIVE_NAME, STANDBY_NAME, Agent, set_process_name
from wucme.agent.schedule import AgentState, Clock, RealClock, next_run

__all__ = ["ACTIVE_NAME", "STANDBY_NAME", "Agent", "AgentState", "Clock", "RealClock",
           "next_run", "set_process_name"]
