#!/usr/bin/env bash
# The KCL MultiLangDaemon's jars, exactly the ones amazon-kclpy's own pom.xml lists (no
# transitive extras), resolved by Maven from Maven Central into the local Maven repository and
# copied to tools/kcl/jars. The pom comes from the pinned amazon-kclpy sdist (through pip); it
# has no project coordinates of its own, so a pom-packaged project is wrapped around its list.
# usage: install-jars.sh <amazon-kclpy version> <local maven repository>
set -euo pipefail
version="$1"; repo="$2"
here="$(cd "$(dirname "$0")" && pwd)"
work="$here/build"
rm -rf "$work" "$here/jars"; mkdir -p "$work"
python3 -m pip download --quiet --no-deps --no-binary :all: -d "$work" "amazon-kclpy==$version"
tar -xzf "$work/amazon_kclpy-$version.tar.gz" -C "$work" "amazon_kclpy-$version/pom.xml"
sed "s#<modelVersion>4.0.0</modelVersion>#&<groupId>local.clickstream</groupId><artifactId>kclpy-jars</artifactId><version>$version</version><packaging>pom</packaging>#" \
  "$work/amazon_kclpy-$version/pom.xml" > "$work/pom.xml"
mvn --batch-mode --quiet -f "$work/pom.xml" -Dmaven.repo.local="$repo" \
  dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory="$here/jars.tmp"
mv "$here/jars.tmp" "$here/jars"
cp "$work/amazon_kclpy-$version/pom.xml" "$here/jars/kclpy-pom.xml"
