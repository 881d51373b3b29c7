#!/usr/bin/env bash
# Build the one-file program with PyInstaller (no UPX):
#   dist/imageferry[.exe]                      the one file to download
#   dist/imageferry-onedir.tar.gz (.zip on Windows)  the same program as a folder, for hosts
#                                              whose antivirus blocks one-file unpacking
# Build tools live in their own virtual environment (build/exe-venv) so that no test tool
# or type checker can end up in the program; imageferry itself is taken from src/.
# Runs on Linux and on Windows (Git Bash, as in .github/workflows/exe.yml).
# Usage: scripts/build-exe.sh            (PYTHON=python3.12 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=build/exe-venv
if [ -x "$VENV/Scripts/python.exe" ]; then BPY="$VENV/Scripts/python.exe"; else BPY="$VENV/bin/python"; fi
if [ ! -x "$BPY" ]; then
  "$PY" -m venv "$VENV"
  if [ -x "$VENV/Scripts/python.exe" ]; then BPY="$VENV/Scripts/python.exe"; fi
fi
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ packaging/requirements-exe.txt -nt "$stamp" ]; then
  echo "build-exe: installing PyInstaller and imageferry's dependencies into $VENV"
  # imageferry's run-time dependencies, read from pyproject.toml (one list to keep up to date)
  "$BPY" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > "$VENV/requirements-run.txt"
  "$BPY" -m pip install -q --disable-pip-version-check -r "$VENV/requirements-run.txt" -r packaging/requirements-exe.txt
  touch "$stamp"
fi

rm -rf dist/imageferry dist/imageferry.exe dist/imageferry-onedir dist/imageferry-onedir.tar.gz dist/imageferry-onedir.zip
"$BPY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/imageferry.spec

# The folder build as an archive: .zip for Windows, .tar.gz elsewhere
"$BPY" - <<'PY'
import shutil, sys
fmt = "zip" if sys.platform == "win32" else "gztar"
print("build-exe:", shutil.make_archive("dist/imageferry-onedir", fmt, "dist", "imageferry-onedir"))
PY
for f in dist/imageferry dist/imageferry.exe; do
  [ -f "$f" ] && echo "build-exe: $f ($(( $(wc -c < "$f") / 1024 / 1024 )) MB): $("$f" --version)"
done
exit 0
