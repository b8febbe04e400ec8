# Fine-tuning with the SDK's v2 console calls: a job, a task that trains to the end and is published as a
# model version, and a second task stopped while it runs, once it has shown its loss. The version and dataset
# ids are the platform's; maxSteps (a local extension) keeps the run to seconds.
import time

from qianfan.resources.console import consts as console_consts
from qianfan.resources.console.finetune import FineTune
from qianfan.resources.console.model import Model

job = FineTune.V2.create_job(name="sdk-job", model="amv-xx", train_mode=console_consts.TrainMode.SFT)
job_id = job["result"]["jobId"]
dataset = {"sourceType": "Platform", "versions": [{"versionId": "ds-xx"}]}


def task(steps):
    created = FineTune.V2.create_task(
        job_id=job_id,
        params_scale=console_consts.TrainParameterScale.LoRA,
        hyper_params={"batchSize": 4, "learningRate": 0.003, "maxSteps": steps, "loggingSteps": 1},
        dataset_config=dataset,
    )
    return created["result"]["taskId"]


def wait(task_id, until):
    while True:
        detail = FineTune.V2.task_detail(task_id=task_id)["result"]
        if until(detail):
            return detail
        time.sleep(0.2)


trained = task(2)
done = wait(trained, lambda d: d["runStatus"] not in ("Waiting", "Running"))
published = Model.V2.create_custom_model(
    model_set_id=Model.V2.describe_model(model_id="amv-xx")["result"]["modelSetId"],
    source_type="Train",
    train_meta={"taskId": trained},
)
stopped = task(100000)
# while it runs, the answer carries the trainer's latest loss (runMetrics, a local field)
running = wait(stopped, lambda d: d["runStatus"] == "Running" and "runMetrics" in d)
stop = FineTune.V2.stop_task(task_id=stopped)
after = wait(stopped, lambda d: d["runStatus"] != "Running")
listed = FineTune.V2.task_list(job_id=job_id)["result"]["taskList"]
jobs = FineTune.V2.job_list()["result"]["jobList"]

report(
    {
        "job": job_id,
        "trained": trained,
        "done": done["runStatus"],
        "checkpoints": done["checkpointList"],
        "version": published["result"]["modelId"],
        "version_source": published["result"]["sourceInfo"],
        "running_metrics": running["runMetrics"],
        "stopped": after["runStatus"],
        "tasks": sorted(item["taskId"] for item in listed),
        "ids": sorted([trained, stopped]),
        "jobs": [item["jobId"] for item in jobs],
    }
)
