"""Helpers for testing qfrun and what plugs into it, as ``click.testing`` is for click commands.

``fake_platform`` is an in-memory ``Platform`` with scripted task outcomes (for executor and stage-type
tests); ``pipelines`` writes and runs small pipelines against it; ``serving`` serves the real local platform
on a free 127.0.0.1 port in a thread, and ``in_process`` calls the same app without a socket (ASGI);
``sdk_oracle`` drives the official SDK against it; ``crash_driver`` is the process that the crash test kills
at every state transition, and ``state_writer`` the one the state file's SIGKILL test kills, each forked
from a driver that ``forking`` starts. Nothing in qfrun's commands imports this.
"""
