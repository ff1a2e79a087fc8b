"""Print the N-th shell command of README.md's "Quick start" (1-based), exactly as a reader copies it.

.ci/run runs the README's commands through this, so CI runs what the README says.
"""

import re
import sys
from pathlib import Path

text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
start = text.index("## Quick start")
section = text[start:text.index("\n## ", start + 1)]
blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
n = int(sys.argv[1])
if not 1 <= n <= len(blocks):
    sys.exit(f"README.md's Quick start has {len(blocks)} command block(s), not {n}")
print(blocks[n - 1].strip())
