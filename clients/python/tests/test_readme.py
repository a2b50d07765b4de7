"""The README's example, run as it is written against a real server (only its address changed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest

from .server import Server

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def example() -> str:
    """The README's first Python code block."""
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as readme:
        found = re.search(r"```python\n(.*?)```", readme.read(), re.S)
    assert found, "README.md has no python example"
    return found.group(1)


class ReadmeTest(unittest.TestCase):
    def test_the_example_prints_what_the_readme_says(self) -> None:
        code = example()
        self.assertLessEqual(len(code.strip().splitlines()), 10)
        with Server() as server:
            run = subprocess.run(
                [sys.executable, "-c", code.replace("http://127.0.0.1:8080", server.url)],
                env={**os.environ, "PYTHONPATH": HERE}, capture_output=True, text=True, timeout=60,
            )
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, "cust_1 102.0 2\ncust_2 101.0 1\n")


if __name__ == "__main__":
    unittest.main()
