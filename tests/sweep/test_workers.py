"""A packed worker's environment: its devices, and the CPU tuning flags this XLA accepts."""

from flopsfit.sweep import layout, workers

CPU3 = layout.Machine("cpu", ("0", "1", "2"))
YNN = "--xla_cpu_experimental_ynn_fusion_type"


def test_cpu_worker_gets_its_devices_threads_and_the_accepted_tuning_flags(monkeypatch):
  monkeypatch.setattr(workers, "_cpu_features", lambda: frozenset({"avx2"}))  # an AVX2-only CPU
  monkeypatch.setenv(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=8"
  )
  one = workers.worker_env(CPU3, ("1",))
  flags = one["XLA_FLAGS"].split()
  assert [f for f in flags if "device_count" in f] == ["--xla_force_host_platform_device_count=1"]
  assert "--xla_cpu_multi_thread_eigen=false" in flags
  assert "--xla_backend_optimization_level=0" in flags  # the user's other flags are kept
  assert one["FLOPSFIT_WORKER_CORES"] == "1"
  assert set(workers.accepted_cpu_flags(workers.CPU_TUNING_FLAGS)) <= set(flags)
  monkeypatch.setattr(workers, "_cpu_features", lambda: frozenset({"avx2", "avx512f"}))
  assert not [f for f in workers.worker_env(CPU3, ("1",))["XLA_FLAGS"].split() if YNN in f]
  two = workers.worker_env(CPU3, ("1", "2"))["XLA_FLAGS"].split()
  assert "--xla_force_host_platform_device_count=2" in two
  assert not [f for f in two if "multi_thread_eigen" in f]  # two cores: Eigen keeps its threads


def test_tuning_flags_only_for_x86_cpus_without_avx512():
  assert workers.cpu_tuning_flags(frozenset({"sse4_2", "avx2", "fma"})) == workers.CPU_TUNING_FLAGS
  assert workers.cpu_tuning_flags(frozenset({"avx2", "avx512f", "avx512bw"})) == ()
  assert workers.cpu_tuning_flags(frozenset()) == ()  # no /proc/cpuinfo flags (e.g. not Linux)
  assert workers.cpu_tuning_flags(frozenset({"fp", "asimd"})) == ()  # an Arm CPU's features


def test_a_flag_xla_does_not_know_is_left_out_and_a_users_value_wins(monkeypatch):
  monkeypatch.setattr(workers, "_cpu_features", lambda: frozenset({"avx2"}))
  assert workers.accepted_cpu_flags(("--xla_flopsfit_no_such_flag=1",)) == ()
  monkeypatch.setenv("XLA_FLAGS", f"{YNN}=dot")
  flags = workers.worker_env(CPU3, ("0",))["XLA_FLAGS"].split()
  assert [f for f in flags if f.startswith(YNN)] == [f"{YNN}=dot"]


def test_gpu_workers_get_their_gpus_and_no_cpu_flags(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  env = workers.worker_env(layout.Machine("gpu", ("0", "1", "2", "3")), ("2", "3"))
  assert env["CUDA_VISIBLE_DEVICES"] == "2,3"
  assert env["XLA_FLAGS"] == ""
