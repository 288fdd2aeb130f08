"""Replay a history of contacts and customer events through a policy, before adopting it.

`io` reads and validates the logs into a timeline (`timeline`: the plain-column layout
every engine shares); `fold` walks one customer's history through the engine; `local`
and `spark` run that fold over every customer; `run` ties reading, folding and writing
together; `report` renders what the policy would have stopped, whom it protects and what
it costs; `synthetic` makes realistic logs of any size to try it on.
"""
