#!/bin/sh
# Installs a LaTeX engine (pdflatex with booktabs) for the table-compilation test, from the
# Debian package registry, where the machine allows it (root and apt-get). Elsewhere it says
# why and leaves the test to check the tables' structure only. About 30 s, ~100 MB.
if command -v pdflatex >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_latex: not root or no apt-get; the LaTeX compile test will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/dev/null 2>&1 && \
   apt-get install -y -qq --no-install-recommends texlive-latex-base texlive-latex-recommended \
       >/dev/null 2>&1; then
    echo "install_latex: installed pdflatex" >&2
else
    echo "install_latex: apt-get failed; the LaTeX compile test will be skipped" >&2
fi
exit 0
