# The long tools' image (runtime fargate-spot): one image for every such tool, built for
# Graviton (linux/arm64) and pushed to each region's ECR repository by the Pulumi program
# (components/long_tools.py). The task definition names the tool (TOOL_NAME) and each run
# passes its event (TOOL_EVENT); the entrypoint runs it.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# The handlers' own dependencies (the Lambda layer's) and boto3, which Lambda's runtime
# provides and a container does not: the version requirements.txt pins (a test keeps them equal).
COPY handlers/requirements.txt handlers/requirements.txt
RUN pip install --no-compile -r handlers/requirements.txt boto3==1.44.8

COPY handlers/ handlers/

# No root in the container; the root file system is read-only in the task definition.
RUN useradd --system --uid 10001 --no-create-home tool
USER 10001

# A batch task: ECS watches the process, Step Functions its exit code; no health check.
HEALTHCHECK NONE

# exec form: Python is PID 1 and receives ECS's SIGTERM itself (Spot's two-minute warning).
ENTRYPOINT ["python", "-m", "handlers.longrun"]
