# Sourced by the scripts: make `uv` available without anything installed by hand.
# uv is bootstrapped from PyPI into a private tool venv (.tools/) on first use.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

if command -v uv >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x .tools/bin/uv ]; then
  UV="$repo_root/.tools/bin/uv"
else
  echo "bootstrapping uv into .tools/ ..." >&2
  python3 -m venv .tools
  .tools/bin/python -m pip install --quiet --disable-pip-version-check uv
  UV="$repo_root/.tools/bin/uv"
fi
export UV
# sam build (python3.12 runtime) needs python3.12 on PATH; pyenv machines expose it this way.
if ! command -v python3.12 >/dev/null 2>&1 && command -v pyenv >/dev/null 2>&1; then
  export PYENV_VERSION="${PYENV_VERSION:-$(pyenv versions --bare | grep -E '^3\.11' | tail -1):$(pyenv versions --bare | grep -E '^3\.12' | tail -1)}"
fi
