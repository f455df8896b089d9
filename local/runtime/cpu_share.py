"""Lambda's CPU share ("Configure Lambda function memory"): a function gets CPU in proportion to its memory, the
equivalent of one vCPU at 1,769 MB. The runtime counts an invocation's time with it, and the worker's context counts
the time left with it, so both agree on when the invocation times out."""

MEMORY_PER_VCPU_MB = 1769


def lambda_elapsed_s(wall_s: float, cpu_s: float, memory_mb: int) -> float:
    """The least time an invocation that took `wall_s` here, `cpu_s` of it on CPUs, takes on Lambda at `memory_mb`:
    its CPU work there runs on memory_mb / 1,769 vCPUs, its waiting (I/O) as here."""
    vcpus = memory_mb / MEMORY_PER_VCPU_MB
    return max(wall_s + cpu_s * max(0.0, 1 / vcpus - 1), cpu_s / vcpus)
