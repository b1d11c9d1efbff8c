# An empty Python handler, for the Runtime API host's per-invocation overhead under
# awslambdaric (bench/functions.sh).
def handler(event, context):
    return {}
