# syntax=docker/dockerfile:1
# One image for every process of the platform; the command picks which one runs:
#   python -m svc_user | svc_inventory | svc_order | rest_bridge   (the commands ./dev up runs)
#   python -m ops.tables                                             (the table-creation Job)
# Build: docker build -t trading-platform:dev .   (istio/cluster.sh does it for kind)
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# Stage 1: the runtime requirements into a virtual environment. Every pinned package
# ships a manylinux wheel, so no compiler is installed in either stage.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ONLY_BINARY=:all:
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile -r /tmp/requirements.txt
COPY generated/ /app/generated/
COPY common/ /app/common/
COPY svc_user/ /app/svc_user/
COPY svc_inventory/ /app/svc_inventory/
COPY svc_order/ /app/svc_order/
COPY rest_bridge/ /app/rest_bridge/
COPY ops/ /app/ops/
COPY devstack/__init__.py devstack/engines.py devstack/data_lock.py /app/devstack/
# Bytecode is compiled here: the final root filesystem is read-only.
RUN /opt/venv/bin/python -m compileall -q /opt/venv /app

# Stage 2: the interpreter, the environment and the code; no pip cache, no build files.
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/generated \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRPC_HOST=0.0.0.0 \
    BRIDGE_HOST=0.0.0.0
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["rest_bridge"]
