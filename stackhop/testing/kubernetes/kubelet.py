"""The fake node: runs each Pod's containers as local processes and reports status like a kubelet.

A container is its `command` + `args` (the image is ignored, `command[0]` is mapped through
`command_map`), with the env a real container would get (values, Secret/ConfigMap refs, field
refs, `$(VAR)` expansion) and its own process group so it can be signalled as a whole. Status
follows the kubelet's: Pending -> Running -> Succeeded/Failed, container waiting/running/
terminated states with real reasons (ContainerCreating, CreateContainerConfigError, Completed,
Error, OOMKilled, StartError, CrashLoopBackOff), restarts per restartPolicy with back-off, pod
conditions, graceful termination on delete, and Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .clock import Clock, rfc3339
from .environment import HOST_IP, NODE_NAME, ConfigError, ContainerEnvironment, CreateError
from .events import EventRecorder
from .injection import IMAGE_FAILURES, PodFailureInjector
from .logs import ContainerLog, LogStore
from .quantity import parse_quantity
from .resources import CONFIG_MAP, POD, SECRET
from .store import Store, WatchEvent

__all__ = ["Kubelet", "PodWorker"]

# What a real container gets from its image; passing the host's lets mapped commands work.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "SYSTEMROOT")
_BACKOFF_BASE, _BACKOFF_MAX = 10.0, 300.0
_INJECTED_KILL_DELAY = 0.2  # real seconds a doomed container runs before an injected OOM kill/eviction
_EVICTION_MESSAGE = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
_IMAGE_MESSAGES = {
    "ImagePullBackOff": 'Back-off pulling image "{image}"',
    "ErrImagePull": 'failed to pull and unpack image "{image}": failed to resolve reference "{image}": not found',
    "InvalidImageName": 'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format',
}


class _PodGone(Exception):
    """The pod was deleted (or replaced) while its worker was still reporting on it."""


class _StartError(Exception):
    """The runtime cannot start the process: StartError, exit code 128."""


def _hex_id(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


class _Container:
    """What the kubelet tracks about one container of a pod."""

    def __init__(self, spec: dict[str, Any], init: bool, waiting_reason: str) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.image: str = spec.get("image", "")
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.state: dict[str, Any] = {"waiting": {"reason": waiting_reason}}
        self.last_state: dict[str, Any] = {}
        self.restart_count = 0
        self.ready = False
        self.started = False
        self.container_id: str | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.oom_kill = False
        self.exit_code: int | None = None

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
        }
        if self.container_id:
            status["containerID"] = self.container_id
            status["imageID"] = f"{self.image.split('@')[0].rsplit(':', 1)[0]}@sha256:{_hex_id('image', self.image)}"
        return status


class PodWorker:
    """Runs one pod from scheduling to a terminal phase (or until it is deleted)."""

    def __init__(self, kubelet: "Kubelet", pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.spec: dict[str, Any] = pod["spec"]
        self.restart_policy: str = self.spec.get("restartPolicy", "Always")
        init_specs = self.spec.get("initContainers") or []
        self.init_containers = [_Container(c, True, "PodInitializing") for c in init_specs]
        main_reason = "PodInitializing" if init_specs else "ContainerCreating"
        self.containers = [_Container(c, False, main_reason) for c in self.spec.get("containers") or []]
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.scheduled = False
        self.start_time: str | None = None
        self.initialized = not init_specs
        self.terminating = False
        self.evicted = False
        self.deadline_exceeded = False
        self.injected: str | None = None
        self.config_changed = asyncio.Event()
        self.stopping = asyncio.Event()  # set when the pod must stop (deletion, deadline, eviction)
        self.sidecars_stopping = False
        self._volumes: dict[str, Path] = {}
        self._transitions: dict[str, tuple[str, str]] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self.task: asyncio.Task[None] | None = None
        self._workdir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._guarded_run(), name=f"pod {self.namespace}/{self.name}"
        )

    def has_processes(self) -> bool:
        return any(c.process is not None and c.process.returncode is None for c in self._all())

    def terminate(self, grace_seconds: int) -> None:
        """The pod is being deleted: SIGTERM now, SIGKILL when the grace period ends."""
        if self.terminating:
            return
        self.terminating = True
        self._signal_all(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(self.kubelet.clock.scaled(grace_seconds), self._signal_all, signal.SIGKILL))
        self.stopping.set()
        if self.task is not None and self.task.done():
            loop.call_soon(self.kubelet.on_pod_terminated, self._pod_ref())

    def abort(self) -> None:
        """The pod object is gone: kill everything at once."""
        self.terminating = True
        self._signal_all(signal.SIGKILL)
        for timer in self._timers:
            timer.cancel()
        if self.task is not None:
            self.task.cancel()

    def _all(self) -> list[_Container]:
        return self.init_containers + self.containers

    def _signal_all(self, sig: signal.Signals) -> None:
        for container in self._all():
            self._signal(container, sig)

    @staticmethod
    def _signal(container: _Container, sig: signal.Signals) -> None:
        process = container.process
        if process is not None and process.returncode is None:
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _pod_ref(self) -> dict[str, Any]:
        return {"metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid}}

    # -- status ------------------------------------------------------------------------------

    def _condition(
        self, kind: str, status: bool, reason: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        value = "True" if status else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != value:
            self._transitions[kind] = (value, rfc3339())
        condition: dict[str, Any] = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": self._transitions[kind][1],
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        return condition

    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": self.phase}
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        conditions = []
        if self.evicted:
            conditions.append(self._condition("DisruptionTarget", True, "TerminationByKubelet", _EVICTION_MESSAGE))
        if self.scheduled:
            terminal = self.phase in ("Succeeded", "Failed")
            conditions.append(self._condition("PodReadyToStartContainers", not terminal))
            pending_init = [
                c.name
                for c in self.init_containers
                if "terminated" not in c.state or c.state["terminated"].get("exitCode") != 0
            ]
            if self.initialized or not pending_init:
                conditions.append(self._condition("Initialized", True))
            else:
                conditions.append(
                    self._condition(
                        "Initialized",
                        False,
                        "ContainersNotInitialized",
                        f"containers with incomplete status: [{' '.join(pending_init)}]",
                    )
                )
            unready = [c.name for c in self.containers if not c.ready]
            ready: tuple[bool, str | None, str | None]
            if terminal:
                ready = (False, "PodCompleted", None)
            elif unready:
                ready = (False, "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
            else:
                ready = (True, None, None)
            conditions.append(self._condition("Ready", *ready))
            conditions.append(self._condition("ContainersReady", *ready))
        conditions.append(self._condition("PodScheduled", True))
        status["conditions"] = conditions
        if self.scheduled:
            status["hostIP"] = HOST_IP
            status["hostIPs"] = [{"ip": HOST_IP}]
            status["podIP"] = HOST_IP
            status["podIPs"] = [{"ip": HOST_IP}]
        if self.start_time:
            status["startTime"] = self.start_time
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        status["containerStatuses"] = [c.status() for c in self.containers]
        status["qosClass"] = _qos_class(self.spec)
        return status

    def _publish(self, node_name: str | None = None) -> dict[str, Any]:
        store = self.kubelet.store
        pod = store.get(POD.key, self.namespace, self.name)
        if pod is None or pod["metadata"].get("uid") != self.uid:
            raise _PodGone()
        status = self._status()
        if node_name is None and pod.get("status") == status:
            return pod
        if node_name is not None:
            pod["spec"]["nodeName"] = node_name
        pod["status"] = status
        return store.update(POD.key, pod)

    def _event(
        self,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        container: str | None = None,
        component: str = "kubelet",
    ) -> None:
        pod = self.kubelet.store.get(POD.key, self.namespace, self.name)
        if pod is None:
            return
        field_path = f"spec.containers{{{container}}}" if container else None
        if container and any(c.name == container for c in self.init_containers):
            field_path = f"spec.initContainers{{{container}}}"
        self.kubelet.events.record(
            pod, "v1", "Pod", reason, message, warning=warning, component=component, field_path=field_path
        )

    # -- running -----------------------------------------------------------------------------

    async def _guarded_run(self) -> None:
        try:
            await self._run()
        except (_PodGone, asyncio.CancelledError):
            pass
        except Exception as exc:  # a kubelet bug: report it instead of silently leaving the pod Pending
            self.kubelet.report_error(exc)
        finally:
            self._signal_all(signal.SIGKILL)
            for timer in self._timers:
                timer.cancel()

    async def _run(self) -> None:
        pod = self.kubelet.store.get(POD.key, self.namespace, self.name)
        if pod is None:
            return
        self.injected = self.kubelet.injector.take(pod)
        self.scheduled = True
        self._publish(node_name=NODE_NAME)
        self._event(
            "Scheduled",
            f"Successfully assigned {self.namespace}/{self.name} to {NODE_NAME}",
            component="default-scheduler",
        )
        await asyncio.sleep(0)
        first = (self.init_containers or self.containers)[0]
        if self.injected in IMAGE_FAILURES:
            self._fail_image(first, self.injected)
            return
        if self.injected == "CreateContainerConfigError":
            message = "injected by FakeKubernetes.inject_pod_failure"
            first.state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            self._publish()
            self._event("Failed", f"Error: {message}", warning=True, container=first.name)
            return
        self.start_time = rfc3339()
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(self.kubelet.clock.scaled(deadline), self._exceed_deadline))
        self._publish()
        sidecars: list[tuple[_Container, asyncio.Task[int]]] = []
        for container in self.init_containers:
            if container.sidecar:  # a native sidecar: started, then the next init container runs beside it
                task = asyncio.get_running_loop().create_task(self._container_loop(container))
                sidecars.append((container, task))
                while not container.started and not task.done() and not self._stopped():
                    await asyncio.sleep(0.01)
                continue
            exit_code = await self._container_loop(container)
            if exit_code != 0 or self.terminating or self.deadline_exceeded:
                await self._stop_sidecars(sidecars)
                self.phase = "Failed"
                self._finish()
                return
        self.initialized = True
        for container in self.containers:
            if "waiting" in container.state:
                container.state = {"waiting": {"reason": "ContainerCreating"}}
        codes = await asyncio.gather(*(self._container_loop(c) for c in self.containers))
        await self._stop_sidecars(sidecars)
        if self.evicted:
            self.phase, self.reason, self.message = "Failed", "Evicted", _EVICTION_MESSAGE
        elif self.deadline_exceeded:
            self.phase, self.reason = "Failed", "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
        else:
            self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        self._finish()

    async def _stop_sidecars(self, sidecars: list[tuple[_Container, "asyncio.Task[int]"]]) -> None:
        """After the main containers: SIGTERM each sidecar, last started first, SIGKILL when the grace period ends.
        Their exit codes do not decide the pod's phase."""
        self.sidecars_stopping = True
        grace = self.kubelet.clock.scaled(float(self.spec.get("terminationGracePeriodSeconds", 30)))
        for container, task in reversed(sidecars):
            if task.done():
                continue
            self._event("Killing", f"Stopping container {container.name}", container=container.name)
            self._signal(container, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except asyncio.TimeoutError:
                self._signal(container, signal.SIGKILL)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, 5)

    def _finish(self) -> None:
        """Publish the terminal status; if the pod is being deleted, let the deletion complete."""
        for container in self._all():
            container.ready = False
        self._publish()
        if self.terminating:
            self.kubelet.on_pod_terminated(self._pod_ref())

    def _fail_image(self, container: _Container, reason: str) -> None:
        message = _IMAGE_MESSAGES[reason].format(image=container.image)
        container.state = {"waiting": {"reason": reason, "message": message}}
        self._publish()
        if reason == "InvalidImageName":
            self._event("InspectFailed", message, warning=True, container=container.name)
            self._event("Failed", f"Error: {reason}", warning=True, container=container.name)
            return
        self._event("Pulling", f'Pulling image "{container.image}"', container=container.name)
        self._event(
            "Failed", f'Failed to pull image "{container.image}": {message}', warning=True, container=container.name
        )
        self._event("Failed", "Error: ErrImagePull", warning=True, container=container.name)
        if reason == "ImagePullBackOff":
            self._event("BackOff", f'Back-off pulling image "{container.image}"', container=container.name)
            self._event("Failed", "Error: ImagePullBackOff", warning=True, container=container.name)

    def _exceed_deadline(self) -> None:
        if self.phase in ("Succeeded", "Failed"):
            return
        self.deadline_exceeded = True
        self.stopping.set()
        self._event("DeadlineExceeded", "Pod was active on the node longer than the specified deadline", warning=True)
        self._signal_all(signal.SIGKILL)

    def _evict(self) -> None:
        if self.phase in ("Succeeded", "Failed") or self.terminating:
            return
        self.evicted = True
        self.stopping.set()
        self._event("Evicted", _EVICTION_MESSAGE, warning=True)
        for container in self.containers:
            self._event("Killing", f"Stopping container {container.name}", container=container.name)
        self._signal_all(signal.SIGKILL)

    def _stopped(self) -> bool:
        return self.terminating or self.evicted or self.deadline_exceeded

    def _should_restart(self, container: _Container, exit_code: int) -> bool:
        if self._stopped():
            return False
        if container.sidecar:
            return not self.sidecars_stopping
        if self.restart_policy == "Always" and not container.init:
            return True
        return self.restart_policy in ("Always", "OnFailure") and exit_code != 0

    async def _container_loop(self, container: _Container) -> int:
        """Run a container, restarting it per restartPolicy; returns its final exit code."""
        exit_code = 137  # what a container that is stopped before it ever ran reports
        while True:
            if self._stopped():
                return exit_code
            try:
                exit_code = await self._run_once(container)
            except ConfigError as exc:
                container.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                self._publish()
                self._event("Failed", f"Error: {exc}", warning=True, container=container.name)
                await self._wait_for_config()
                continue
            except CreateError as exc:
                container.state = {"waiting": {"reason": "CreateContainerError", "message": str(exc)}}
                self._publish()
                self._event("Failed", f"Error: {exc}", warning=True, container=container.name)
                await self.stopping.wait()  # pods are immutable: only stopping the pod ends this
                continue
            if not self._should_restart(container, exit_code):
                container.exit_code = exit_code
                return exit_code
            delay = min(_BACKOFF_BASE * 2**container.restart_count, _BACKOFF_MAX)
            container.last_state = container.state
            container.restart_count += 1
            container.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(delay)}s restarting failed container={container.name} pod={self.name}_{self.namespace}({self.uid})",
                }
            }
            self._publish()
            self._event(
                "BackOff",
                f"Back-off restarting failed container {container.name} in pod {self.name}_{self.namespace}({self.uid})",
                warning=True,
                container=container.name,
            )
            await self._sleep_unless_stopped(self.kubelet.clock.scaled(delay))

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _wait_for_config(self) -> None:
        """Retry when a Secret/ConfigMap in the namespace changes, or after a while anyway."""
        self.config_changed.clear()
        waiters = [asyncio.ensure_future(self.config_changed.wait()), asyncio.ensure_future(self.stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=self.kubelet.clock.scaled(10.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _run_once(self, container: _Container) -> int:
        pod = self.kubelet.store.get(POD.key, self.namespace, self.name)
        if pod is None or pod["metadata"].get("uid") != self.uid:
            raise _PodGone()
        environment = ContainerEnvironment(self.kubelet.store, pod)
        env = environment.resolve(container.spec)
        argv = environment.argv(container.spec, env)
        # terminationMessagePath is a file the runtime mounts into the container; here the process runs
        # on the host, so the path is rewritten in its arguments to a file of the container's own.
        message_path = container.spec.get("terminationMessagePath") or "/dev/termination-log"
        message_file = self.kubelet.workdir / f"termination-{self.uid[-12:]}-{container.name}-{container.restart_count}"
        message_file.unlink(missing_ok=True)
        argv = [a.replace(message_path, str(message_file)) for a in argv]
        mounted = self._mounted(container.spec)
        argv = [mounted(a) for a in argv]
        env = {k: mounted(v) for k, v in env.items()}
        self._pull_events(container)
        log = self.kubelet.logs.start(self.uid, container.name)
        container.container_id = (
            f"containerd://{_hex_id(self.uid, container.name, container.restart_count, time.time_ns())}"
        )
        started_at = rfc3339()
        try:
            process = await self._spawn(argv, env, container.spec)
        except _StartError as exc:
            log.close()
            message = str(exc)
            container.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": message,
                    "startedAt": "1970-01-01T00:00:00Z",
                    "finishedAt": rfc3339(),
                    "containerID": container.container_id,
                }
            }
            self._event("Failed", f"Error: {message}", warning=True, container=container.name)
            self._publish_if_others_running(container)
            return 128
        container.process = process
        self.kubelet.process_groups.add(process.pid)
        if self._stopped():
            self._signal(container, signal.SIGTERM)
        self._event("Created", f"Created container: {container.name}", container=container.name)
        self._event("Started", f"Started container {container.name}", container=container.name)
        container.state = {"running": {"startedAt": started_at}}
        container.started = True
        container.ready = not container.init or container.sidecar
        if not container.init:
            self.phase = "Running"
        self._publish()
        self._arm_injected_failure(container)
        pump = asyncio.get_running_loop().create_task(self._pump(process, log))
        try:
            returncode = await process.wait()
            await pump
        finally:
            log.close()
            # When a container's main process ends, the runtime kills whatever it left behind.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.kubelet.process_groups.discard(process.pid)
            if process.returncode is None:  # cancelled mid-run: reap it so asyncio closes its transport
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(process.wait(), 2)
        container.process = None
        exit_code = returncode if returncode >= 0 else 128 - returncode
        if container.oom_kill:
            reason = "OOMKilled"
            container.oom_kill = False
        else:
            reason = "Completed" if exit_code == 0 else "Error"
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": rfc3339(),
            "containerID": container.container_id,
        }
        written = message_file.read_bytes()[:4096] if message_file.exists() else b""
        if written:
            terminated["message"] = written.decode(errors="replace")
        elif exit_code != 0 and container.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = b"".join(line for _, line in log.lines[-80:])[-2048:]
            if tail:
                terminated["message"] = tail.decode(errors="replace")
        container.state = {"terminated": terminated}
        container.ready = False
        container.started = False
        self._publish_if_others_running(container)
        return exit_code

    def _mounted(self, spec: dict[str, Any]) -> Callable[[str], str]:
        """emptyDir volumes are directories of the pod's own on the host; a container's processes run on the
        host, so each mountPath in its arguments and env values is rewritten to that directory."""
        empty = {v["name"] for v in self.spec.get("volumes") or [] if "emptyDir" in v}
        mounts = sorted(((m["mountPath"].rstrip("/") or "/", m["name"]) for m in spec.get("volumeMounts") or []
                         if m.get("name") in empty), key=lambda m: -len(m[0]))
        if not mounts:
            return lambda text: text
        for _, name in mounts:
            if name not in self._volumes:
                self._volumes[name] = self.kubelet.workdir / f"volume-{self.uid[-12:]}-{name}"
                self._volumes[name].mkdir(parents=True, exist_ok=True)
        pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(path)}(?=/|$|[^\w.-])" for path, _ in mounts))
        hosts = {path: str(self._volumes[name]) for path, name in mounts}
        return lambda text: pattern.sub(lambda m: hosts[m.group(0)], text)

    def _publish_if_others_running(self, container: _Container) -> None:
        if any(c is not container and "running" in c.state for c in self.containers):
            self._publish()

    def _arm_injected_failure(self, container: _Container) -> None:
        if container.init or container is not self.containers[0]:
            return
        loop = asyncio.get_running_loop()
        if self.injected == "OOMKilled":
            self.injected = None
            container.oom_kill = True
            self._timers.append(loop.call_later(_INJECTED_KILL_DELAY, self._signal, container, signal.SIGKILL))
        elif self.injected == "Evicted":
            self.injected = None
            self._timers.append(loop.call_later(_INJECTED_KILL_DELAY, self._evict))

    @staticmethod
    async def _pump(process: asyncio.subprocess.Process, log: ContainerLog) -> None:
        assert process.stdout is not None
        while True:
            chunk = await process.stdout.read(65536)
            if not chunk:
                return
            log.feed(chunk)

    def _pull_events(self, container: _Container) -> None:
        image = container.image
        if container.spec.get("imagePullPolicy", "IfNotPresent") == "Always":
            self._event("Pulling", f'Pulling image "{image}"', container=container.name)
            self._event(
                "Pulled",
                f'Successfully pulled image "{image}" in 1ms (1ms including waiting). Image size: 0 bytes.',
                container=container.name,
            )
        else:
            self._event("Pulled", f'Container image "{image}" already present on machine', container=container.name)

    async def _spawn(
        self, argv: list[str], container_env: dict[str, str], spec: dict[str, Any]
    ) -> asyncio.subprocess.Process:
        kubelet = self.kubelet
        env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        env.update(kubelet.pod_env)
        env["HOSTNAME"] = self.name[:63]
        env.update(container_env)
        mapped = kubelet.command_map.get(argv[0])
        if mapped is not None:
            argv = ([mapped] if isinstance(mapped, str) else list(mapped)) + argv[1:]
        else:
            found = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
            if not found or not os.access(found, os.X_OK):
                raise _StartError(
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create "
                    f'failed: unable to start container process: exec: "{argv[0]}": executable file not found in $PATH: unknown'
                )
            argv = [found] + argv[1:]
        workdir = spec.get("workingDir")
        if workdir:
            try:
                os.makedirs(workdir, exist_ok=True)
            except OSError as exc:
                raise _StartError(
                    f'failed to create containerd task: chdir to cwd ("{workdir}") failed: {exc.strerror}'
                ) from exc
        else:
            if self._workdir is None:
                self._workdir = kubelet.workdir / f"{self.namespace}_{self.name}_{self.uid[-12:]}"
                self._workdir.mkdir(parents=True, exist_ok=True)
            workdir = str(self._workdir)
        env.setdefault("HOME", workdir)
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=workdir,
                start_new_session=True,
            )
        except OSError as exc:
            raise _StartError(
                f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                f'unable to start container process: exec: "{argv[0]}": {exc.strerror}: unknown'
            ) from exc


def _qos_class(spec: dict[str, Any]) -> str:
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    for request, limit in zip(requests, limits):
        for resource in ("cpu", "memory"):
            if resource not in limit or parse_quantity(request.get(resource, limit[resource])) != parse_quantity(
                limit[resource]
            ):
                return "Burstable"
    return "Guaranteed"


class Kubelet:
    """Starts a PodWorker for every new Pod and stops it when the Pod is deleted."""

    def __init__(
        self,
        store: Store,
        events: EventRecorder,
        clock: Clock,
        command_map: Mapping[str, str | Sequence[str]],
        pod_env: Mapping[str, str],
        injector: PodFailureInjector,
        logs: LogStore,
        workdir: Path,
        report_error: Callable[[BaseException], None],
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.command_map = dict(command_map)
        self.pod_env = dict(pod_env)
        self.injector = injector
        self.logs = logs
        self.workdir = workdir
        self.report_error = report_error
        self.on_pod_terminated: Callable[[dict[str, Any]], None] = lambda pod: None
        self.process_groups: set[int] = set()
        self._workers: dict[str, PodWorker] = {}
        store.subscribe(self._on_event)

    def needs_grace(self, pod: dict[str, Any]) -> bool:
        """Whether deleting this pod must wait for its processes (graceful termination)."""
        worker = self._workers.get(pod["metadata"].get("uid", ""))
        return worker is not None and worker.has_processes()

    def worker(self, pod_uid: str) -> PodWorker | None:
        return self._workers.get(pod_uid)

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource in (SECRET.key, CONFIG_MAP.key):
            namespace = event.object["metadata"].get("namespace")
            for worker in self._workers.values():
                if worker.namespace == namespace:
                    worker.config_changed.set()
            return
        if event.resource != POD.key:
            return
        meta = event.object["metadata"]
        uid = meta["uid"]
        if event.type == "ADDED":
            phase = (event.object.get("status") or {}).get("phase")
            if not meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
                worker = PodWorker(self, event.object)
                self._workers[uid] = worker
                worker.start()
        elif event.type == "MODIFIED" and meta.get("deletionTimestamp"):
            terminating = self._workers.get(uid)
            if terminating is not None:
                terminating.terminate(int(meta.get("deletionGracePeriodSeconds") or 0))
        elif event.type == "DELETED":
            gone = self._workers.pop(uid, None)
            if gone is not None:
                gone.abort()
            self.logs.forget(uid)

    async def shutdown(self) -> None:
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:
            worker.abort()
        tasks = [w.task for w in workers if w.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
