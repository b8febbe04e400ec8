# The page's evaluation example. Two edits: `version_id=` is spelled `id=`, and the page's duplicated,
# unbalanced `em = EvaluationManager(...` lines (a SyntaxError as printed) are the one call they mean.
from qianfan.dataset import Dataset
from qianfan.model import Model
from qianfan.evaluation.evaluator import QianfanRuleEvaluator
from qianfan.evaluation import EvaluationManager

ds = Dataset.load(qianfan_dataset_id="ds-xx")
m = Model(id="amv-xx")

# 千帆平台规则评估器:
qianfan_evaluators = [
    QianfanRuleEvaluator(using_accuracy=True, using_similarity=True),
]
em = EvaluationManager(
    qianfan_evaluators=qianfan_evaluators
    # local_evaluators=[...]
)
result = em.eval([m], ds)

report({"metrics": result.metrics, "rows": result.result_dataset.list()})
