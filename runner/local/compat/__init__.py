"""The v1 routes the official ``qianfan`` SDK (0.4.12.3) still calls, as a thin layer over the v2 store.

Qianfan's documented API is v2 (``/v2/...``); the SDK page's examples reach a few retired v1 paths
(``/wenxinworkshop/...``: model version detail, dataset info and export, the evaluation that also serves as
batch inference over a dataset). These modules answer them in the v1 envelope (``{log_id, result}``, errors
``{error_code, error_msg}``) from the same store and task runner the v2 handlers use, so a pipeline and the
SDK see one platform. docs/sdk-compat.md lists every route and why it exists.
"""
