"""``import mindfu_core`` loads the standard library and MindFu's core only."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_core_loads_no_third_party_module() -> None:
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import mindfu_core\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "allowed = set(sys.stdlib_module_names) | {'mindfu_core'}\n"
        "print(sorted(new - allowed))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
