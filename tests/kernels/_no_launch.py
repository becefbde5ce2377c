"""A stand-in for a Triton kernel that must not run."""


class NoLaunch:
    """Indexing it by a grid, as a launch does, fails the test."""

    def __getitem__(self, grid):
        raise AssertionError("a Triton kernel ran where its torch version was to run")
