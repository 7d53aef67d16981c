"""Tests of the agent (wucme/agent, docs/agent.md)."""
