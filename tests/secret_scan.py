"""Secret scan of the tracked files (run by ``make lint`` and by the test suite).

Looks for what must never be committed: cloud access keys, private keys, git hosting and chat tokens, webhook
URLs with their secret path, and credentials assigned a literal value in code or config.  References such as
``secretKeyRef`` or ``${VAR}`` and the local placeholder values are not secrets.  Exit code 1 lists each finding
as ``path:line: kind``; nothing is printed of the secret itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\b(ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{50,}"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]{16,}"),
    "credential assigned a literal": re.compile(
        r"(?i)\b(aws_secret_access_key|secret_key|password|passwd|api_key|token)\b[\"']?\s*[:=]\s*[\"']"
        r"(?!\$\{|\{\{|<|changeme|example|placeholder)([A-Za-z0-9+/=_\-]{16,})[\"']"
    ),
}
SKIP_SUFFIXES = (".lock", ".png", ".jpg", ".ico", ".parquet")


def tracked(root: Path) -> list[Path]:
    """Every file git tracks (or would track: untracked but not ignored) under ``root``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [root / p for p in listed.split("\0") if p and not p.endswith(SKIP_SUFFIXES)]


def scan_text(text: str) -> list[tuple[int, str]]:
    """(line number, kind) of every finding in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        found += [(number, kind) for kind, pattern in PATTERNS.items() if pattern.search(line)]
    return found


def scan(root: Path) -> list[str]:
    """Findings as ``path:line: kind``."""
    findings = []
    for path in tracked(root):
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        findings += [f"{path.relative_to(root)}:{n}: {kind}" for n, kind in scan_text(text)]
    return findings


def main() -> int:
    """Scan the repository; 1 when anything is found."""
    root = Path(__file__).resolve().parents[1]
    findings = scan(root)
    for finding in findings:
        print(f"secret scan: {finding}", file=sys.stderr)
    if findings:
        print("secret scan: move these into a Secret or the gitignored state folder", file=sys.stderr)
        return 1
    print(f"secret scan: {len(tracked(root))} files clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
