# railpm on the official Airflow image: the DAGs, the `railpm` CLI and the Spark driver (spark-submit from
# the pyspark wheel) run here. Java 17 is added for spark-submit. Build from the repository root:
#   docker build -f docker/railpm.Dockerfile -t railpm:latest .
# The Airflow version must be the one constraints.txt pins (tests/test_docker.py checks it).
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

USER airflow
COPY --chown=airflow:root pyproject.toml constraints.txt README.md /opt/railpm/
COPY --chown=airflow:root railpm /opt/railpm/railpm
COPY --chown=airflow:root jobs /opt/railpm/jobs
COPY --chown=airflow:root models /opt/railpm/models
COPY --chown=airflow:root expectations /opt/railpm/expectations
COPY --chown=airflow:root dags /opt/airflow/dags
RUN pip install --no-cache-dir -c /opt/railpm/constraints.txt /opt/railpm
