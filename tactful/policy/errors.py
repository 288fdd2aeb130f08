"""Policy errors that say where: file, line and field."""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy that cannot be used. `problems` lists every (line, field, message) found."""

    def __init__(self, file: str, problems: list[tuple[int | None, str, str]]) -> None:
        self.file = file
        self.problems = problems
        super().__init__(self.render())

    @property
    def line(self) -> int | None:
        return self.problems[0][0] if self.problems else None

    @property
    def field(self) -> str:
        return self.problems[0][1] if self.problems else ""

    def render(self) -> str:
        lines = []
        for line, field, message in self.problems:
            where = f"{self.file}:{line}" if line else self.file
            lines.append(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        return "\n".join(lines)

    def as_list(self) -> list[dict[str, object]]:
        return [
            {"file": self.file, "line": line, "field": field, "message": message}
            for line, field, message in self.problems
        ]
