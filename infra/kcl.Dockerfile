# The KCL consumers' image (infra/template.yaml KclConsumers): Python and Java, the project
# with its pinned requirements, and the MultiLangDaemon's jars, fetched as `make` does (mvn,
# from amazon-kclpy's own pom.xml). Build from the repository root:
#   docker build -f infra/kcl.Dockerfile -t clickstream-kcl .
# Not built here (no Docker on these machines); `make rehearse` checks the service around it.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements-lock.txt pyproject.toml ./
COPY tools/kcl/install-jars.sh tools/kcl/install-jars.sh
RUN tools/kcl/install-jars.sh "$(sed -n 's/^amazon-kclpy==//p' requirements-lock.txt)" /root/.m2/repository \
    && KCL_MVN_REPO_SEARCH_URL=file:///root/.m2/repository/ pip install --no-cache-dir -r requirements-lock.txt \
    && rm -rf /root/.m2 tools/kcl/build
COPY clickstream clickstream
COPY consumers consumers
RUN pip install --no-cache-dir --no-deps -e .
ENV PYTHONUNBUFFERED=1
CMD ["python", "-m", "consumers.kcl_daemon", "aggregator"]
