"""Write the shell completion scripts shipped in the wheel (share/bash-completion, zsh, fish).

    python completions/generate.py          # rewrite cronctl.bash, _cronctl, cronctl.fish
    python completions/generate.py --check  # exit 1 when a committed file differs

The scripts come from `cronctl.cli.complete.completion_script`, the same text that
`cronctl completion SHELL` prints; tests/system/test_completion.py checks they match.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from cronctl.cli.complete import FILES, completion_script  # noqa: E402


def generated() -> dict[Path, str]:
    return {HERE / name: completion_script(shell) for shell, name in FILES.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in generated().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(
            f"out of date: {', '.join(stale)} (run: python completions/generate.py)",
            file=sys.stderr,
        )
        return 1
    if not check:
        print(f"wrote {', '.join(stale) or 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
