"""Exceptions that name what is wrong, where, and what was expected."""


class FluxbridgeError(Exception):
    """Base class for every error the package raises on bad input."""


class ConfigError(FluxbridgeError, ValueError):
    """A configuration file or option is invalid (unknown key, bad value, missing field)."""


class SchemaError(FluxbridgeError, ValueError):
    """A dataset does not follow the canonical schema.

    The message always names the file, the variable (or coordinate) and the
    expectation that failed.
    """

    def __init__(self, path: object, variable: str | None, problem: str) -> None:
        self.path = str(path)
        self.variable = variable
        self.problem = problem
        where = f"{self.path}" + (f", variable '{variable}'" if variable else "")
        super().__init__(f"{where}: {problem}")


class NotBuiltError(FluxbridgeError, RuntimeError):
    """A pipeline stage that this version does not provide yet."""
