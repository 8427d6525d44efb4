"""The CrewAI releases this package supports. 1.15.19 is the first whose agents let a hook's
``HookAborted`` through without retrying the task or wrapping it in ``RuntimeError``
(``max_execution_time``): stopping an agent depends on it."""

_instruments = ("crewai >= 1.15.19, < 2",)
