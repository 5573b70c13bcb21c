"""The provider catalog shipped with webchat: one definition, applied by a data migration
(and re-applied by `seed_demo` for the demo provider). Admins edit it in Django admin
afterwards; applying it again never overwrites their edits, it only adds what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypedDict


class _ModelRequired(TypedDict):
    name: str
    display_name: str
    context_window: int
    max_output_tokens: int
    input_per_million: str
    output_per_million: str
    currency: str
    effective_from: str


class ModelEntry(_ModelRequired, total=False):
    supports_tools: bool  # default True
    thinks: bool  # a reasoning model (default False): see ChatModel.thinks
    # One line for the model picker and the teacher's allowed-models page: what it is good at.
    description_en: str
    description_zh: str


class _ProviderRequired(TypedDict):
    slug: str
    name_en: str
    name_zh: str
    base_url: str
    signup_url: str
    auth_style: str
    is_demo: bool
    sort_order: int
    models: list[ModelEntry]


class ProviderEntry(_ProviderRequired, total=False):
    token_url: str
    env_key_var: str
    env_secret_var: str
    env_base_url_var: str
    notes_en: str
    notes_zh: str


def _model(
    name: str,
    display_name: str,
    context_window: int,
    max_output_tokens: int,
    price_in: str,
    price_out: str,
    currency: str,
    effective_from: str = "2025-01-01",
    *,
    description_en: str = "",
    description_zh: str = "",
    thinks: bool = False,
) -> ModelEntry:
    return {
        "thinks": thinks,
        "description_en": description_en,
        "description_zh": description_zh,
        "name": name,
        "display_name": display_name,
        "context_window": context_window,
        "max_output_tokens": max_output_tokens,
        "input_per_million": price_in,
        "output_per_million": price_out,
        "currency": currency,
        "effective_from": effective_from,
    }


DEMO: ProviderEntry = {
    "slug": "demo",
    "notes_en": "Built into webchat: no key, no network. It explains how its own reply is billed.",
    "notes_zh": "webchat 内置：不需要密钥，也不需要联网。它会讲解自己这条回复是怎样计费的。",
    "name_en": "Demo (built in)",
    "name_zh": "演示（内置）",
    "base_url": "/demo/v1",
    "signup_url": "",
    "auth_style": "none",
    "is_demo": True,
    "sort_order": 0,
    "models": [
        {
            "name": "demo-tutor",
            "display_name": "Demo tutor",
            "description_en": "Built in, no key needed. Its price is made up (no real money): it shows how a reply "
            "is counted and billed.",
            "description_zh": "内置，不需要密钥。价格是虚构的（不花真钱）：演示一条回复如何计数和计费。",
            "context_window": 8192,
            "max_output_tokens": 1024,
            # A made-up price, so the demo can show how billing works.
            "input_per_million": "1.00",
            "output_per_million": "2.00",
            "currency": "CNY",
            "effective_from": "2026-01-01",
        }
    ],
}

# List prices per million tokens as published by each provider when this catalog was
# written; admins keep them current in Django admin (a new price row with its start date).
CATALOG: list[ProviderEntry] = [
    DEMO,
    {
        "slug": "openai",
        "name_en": "OpenAI",
        "name_zh": "OpenAI",
        "sort_order": 10,
        "base_url": "https://api.openai.com/v1",
        "signup_url": "https://platform.openai.com/api-keys",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "OPENAI_API_KEY",
        "env_base_url_var": "OPENAI_BASE_URL",
        "notes_en": "Pay as you go; a card is needed. OPENAI_BASE_URL may point at any OpenAI-compatible server.",
        "notes_zh": "按量付费，需要绑定信用卡。OPENAI_BASE_URL 可以指向任何兼容 OpenAI 的服务。",
        "models": [
            _model(
                "gpt-4o-mini",
                "GPT-4o mini",
                128000,
                16384,
                "0.15",
                "0.60",
                "USD",
                description_en="Fast and cheap; good for everyday questions and practice.",
                description_zh="速度快、价格低，适合日常提问和练习。",
            ),
            _model(
                "gpt-4o",
                "GPT-4o",
                128000,
                16384,
                "2.50",
                "10.00",
                "USD",
                description_en="OpenAI's stronger general model: better reasoning, higher price.",
                description_zh="OpenAI 更强的通用模型：推理更好，价格更高。",
            ),
            _model(
                "gpt-4.1-mini",
                "GPT-4.1 mini",
                1047576,
                32768,
                "0.40",
                "1.60",
                "USD",
                "2025-04-14",
                description_en="Small and cheap with a very long context (whole books).",
                description_zh="小巧便宜，上下文极长（可放下整本书）。",
            ),
        ],
    },
    {
        "slug": "openrouter",
        "name_en": "OpenRouter",
        "name_zh": "OpenRouter",
        "sort_order": 20,
        "base_url": "https://openrouter.ai/api/v1",
        "signup_url": "https://openrouter.ai/keys",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "OPENROUTER_API_KEY",
        "notes_en": "One key for many vendors' models: switch models to compare them in class. Some models are free.",
        "notes_zh": "一个密钥调用多家厂商的模型，方便在课堂上切换对比。部分模型免费。",
        "models": [
            _model(
                "openai/gpt-4o-mini",
                "GPT-4o mini (via OpenRouter)",
                128000,
                16384,
                "0.15",
                "0.60",
                "USD",
                description_en="GPT-4o mini through OpenRouter's one key.",
                description_zh="通过 OpenRouter 的同一个密钥调用 GPT-4o mini。",
            ),
            _model(
                "deepseek/deepseek-chat",
                "DeepSeek V3 (via OpenRouter)",
                65536,
                8192,
                "0.27",
                "1.10",
                "USD",
                description_en="DeepSeek V3 through OpenRouter, billed in USD.",
                description_zh="通过 OpenRouter 调用 DeepSeek V3，按美元计费。",
            ),
            _model(
                "meta-llama/llama-3.1-8b-instruct",
                "Llama 3.1 8B (via OpenRouter)",
                131072,
                8192,
                "0.02",
                "0.05",
                "USD",
                description_en="A small open model: very cheap, simpler answers.",
                description_zh="小型开源模型：非常便宜，回答较简单。",
            ),
        ],
    },
    {
        "slug": "deepseek",
        "name_en": "DeepSeek",
        "name_zh": "幻方-深度求索",
        "sort_order": 30,
        "base_url": "https://api.deepseek.com/v1",
        "signup_url": "https://platform.deepseek.com/api_keys",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "DEEPSEEK_API_KEY",
        "notes_en": "Top up in CNY; new accounts get a small free allowance.",
        "notes_zh": "人民币充值；新账户有少量赠送额度。",
        "models": [
            _model(
                "deepseek-chat",
                "DeepSeek-V3",
                65536,
                8192,
                "2.00",
                "8.00",
                "CNY",
                description_en="Strong general chat and coding in Chinese and English.",
                description_zh="中英文通用对话和编程能力都很强。",
            ),
            _model(
                "deepseek-reasoner",
                "DeepSeek-R1",
                65536,
                32768,  # its answer with its thinking (DeepSeek's default for it is 32K)
                "4.00",
                "16.00",
                "CNY",
                description_en="Thinks step by step before answering: maths and logic; slower.",
                description_zh="先逐步思考再作答，擅长数学和逻辑；较慢。",
                thinks=True,
            ),
        ],
    },
    {
        "slug": "moonshot",
        "name_en": "Moonshot AI (Kimi)",
        "name_zh": "月之暗面-Kimi",
        "sort_order": 40,
        "base_url": "https://api.moonshot.cn/v1",
        "signup_url": "https://platform.moonshot.cn/console/api-keys",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "MOONSHOT_API_KEY",
        "notes_en": "New accounts get free credit; rate limits rise with the amount topped up.",
        "notes_zh": "新账户赠送额度；充值越多，速率限制越宽。",
        "models": [
            _model(
                "moonshot-v1-8k",
                "Moonshot v1 8K",
                8192,
                4096,
                "2.00",
                "10.00",
                "CNY",
                description_en="Kimi for short chats (8K context).",
                description_zh="Kimi 短对话版（8K 上下文）。",
            ),
            _model(
                "moonshot-v1-32k",
                "Moonshot v1 32K",
                32768,
                8192,
                "5.00",
                "20.00",
                "CNY",
                description_en="Kimi for longer texts (32K context).",
                description_zh="Kimi 长文本版（32K 上下文）。",
            ),
            _model(
                "kimi-k2-0711-preview",
                "Kimi K2",
                131072,
                8192,
                "4.00",
                "16.00",
                "CNY",
                "2025-07-11",
                description_en="Kimi's large model: strong at coding and tool use.",
                description_zh="Kimi 大模型：编程和工具调用能力强。",
            ),
        ],
    },
    {
        "slug": "glm",
        "name_en": "Zhipu AI (ChatGLM)",
        "name_zh": "智谱-智谱清言",
        "sort_order": 50,
        "base_url": "https://open.bigmodel.cn/api/paas/v4",
        "signup_url": "https://open.bigmodel.cn/usercenter/apikeys",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "ZHIPUAI_API_KEY",
        "notes_en": "GLM-4-Flash is free to call; new accounts get a token allowance.",
        "notes_zh": "GLM-4-Flash 可免费调用；新账户赠送 token 额度。",
        "models": [
            _model(
                "glm-4-flash",
                "GLM-4-Flash",
                128000,
                4096,
                "0",
                "0",
                "CNY",
                description_en="Free to call; quick everyday answers.",
                description_zh="免费调用；日常问题回答迅速。",
            ),
            _model(
                "glm-4-air",
                "GLM-4-Air",
                128000,
                4096,
                "0.50",
                "0.50",
                "CNY",
                description_en="Cheap and balanced for most classroom tasks.",
                description_zh="便宜均衡，适合大多数课堂任务。",
            ),
            _model(
                "glm-4-plus",
                "GLM-4-Plus",
                128000,
                4096,
                "5.00",
                "5.00",
                "CNY",
                description_en="Zhipu's strongest: better reasoning, higher price.",
                description_zh="智谱最强模型：推理更好，价格更高。",
            ),
        ],
    },
    {
        "slug": "qwen",
        "name_en": "Alibaba Qwen (DashScope)",
        "name_zh": "通义千问",
        "sort_order": 60,
        "base_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "signup_url": "https://bailian.console.aliyun.com/?apiKey=1",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "DASHSCOPE_API_KEY",
        "notes_en": "DashScope's OpenAI-compatible mode. Each model comes with a free token allowance.",
        "notes_zh": "使用 DashScope 的 OpenAI 兼容模式。每个模型都有免费 token 额度。",
        "models": [
            _model(
                "qwen-turbo",
                "Qwen Turbo",
                131072,
                8192,
                "0.30",
                "0.60",
                "CNY",
                description_en="Fastest and cheapest Qwen; long context.",
                description_zh="通义千问中最快最便宜的一款；上下文长。",
            ),
            _model(
                "qwen-plus",
                "Qwen Plus",
                131072,
                8192,
                "0.80",
                "2.00",
                "CNY",
                description_en="Balanced Qwen: good quality at a moderate price.",
                description_zh="均衡的通义千问：质量好，价格适中。",
            ),
            _model(
                "qwen-max",
                "Qwen Max",
                32768,
                8192,
                "2.40",
                "9.60",
                "CNY",
                description_en="Qwen's strongest model for harder questions.",
                description_zh="通义千问最强模型，适合较难的问题。",
            ),
        ],
    },
    {
        "slug": "ernie",
        "name_en": "Baidu ERNIE (Qianfan)",
        "name_zh": "百度-文心一言",
        "sort_order": 70,
        "base_url": "https://qianfan.baidubce.com/v2",
        "signup_url": "https://console.bce.baidu.com/qianfan/ais/console/applicationConsole/application",
        "token_url": "https://aip.baidubce.com/oauth/2.0/token",
        "auth_style": "ernie",
        "is_demo": False,
        "env_key_var": "QIANFAN_API_KEY",
        "env_secret_var": "QIANFAN_SECRET_KEY",
        "notes_en": "An application's API Key + Secret Key are exchanged for an access token; a single Qianfan bearer key also works. ERNIE Speed and Lite are free.",
        "notes_zh": "应用的 API Key + Secret Key 会先换取访问令牌；也可以直接用千帆的单个 API Key。ERNIE Speed 和 Lite 免费。",
        "models": [
            _model(
                "ernie-4.0-8k",
                "ERNIE 4.0",
                8192,
                2048,
                "30.00",
                "90.00",
                "CNY",
                description_en="Baidu's strongest ERNIE; expensive.",
                description_zh="百度最强的文心模型；价格较高。",
            ),
            _model(
                "ernie-3.5-8k",
                "ERNIE 3.5",
                8192,
                2048,
                "0.80",
                "2.00",
                "CNY",
                description_en="ERNIE for everyday Chinese writing and questions.",
                description_zh="适合日常中文写作和问答的文心模型。",
            ),
            _model(
                "ernie-speed-128k",
                "ERNIE Speed",
                131072,
                4096,
                "0",
                "0",
                "CNY",
                description_en="Free and fast, with a long context.",
                description_zh="免费且快速，上下文长。",
            ),
        ],
    },
    {
        "slug": "custom",
        "name_en": "Custom OpenAI-compatible server",
        "name_zh": "自定义兼容 OpenAI 的服务",
        "sort_order": 80,
        "base_url": "http://127.0.0.1:11434/v1",
        "signup_url": "",
        "auth_style": "bearer",
        "is_demo": False,
        "env_key_var": "CUSTOM_OPENAI_API_KEY",
        "env_base_url_var": "CUSTOM_OPENAI_BASE_URL",
        "notes_en": "Ollama, vLLM or a school proxy. Ollama accepts any key (for example: ollama).",
        "notes_zh": "Ollama、vLLM 或学校自己的代理。Ollama 接受任意密钥（例如 ollama）。",
        "models": [
            _model(
                "llama3.2",
                "Llama 3.2 (local)",
                131072,
                4096,
                "0",
                "0",
                "CNY",
                description_en="Runs on the school's own server: free, nothing leaves the school.",
                description_zh="在学校自己的服务器上运行：免费，数据不出校。",
            ),
            _model(
                "qwen2.5:7b",
                "Qwen 2.5 7B (local)",
                32768,
                4096,
                "0",
                "0",
                "CNY",
                description_en="Qwen 2.5 on the school's own server: free, good Chinese.",
                description_zh="在学校服务器上运行的通义千问 2.5：免费，中文好。",
            ),
        ],
    },
]


def catalog_apply(*, entries: list[ProviderEntry], provider_model: Any, chat_model_model: Any, price_model: Any) -> int:
    """Create the providers, models and first prices that are missing. Takes the model
    classes so a migration can pass its historical ones. Returns how many rows it created."""
    created = 0
    # A migration's historical model may predate some fields: pass only those it has.
    known = {f.name for f in provider_model._meta.get_fields()}
    model_known = {f.name for f in chat_model_model._meta.get_fields()}
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k not in ("slug", "models") and k in known}
        provider, made = provider_model.objects.get_or_create(slug=entry["slug"], defaults=fields)
        created += made
        for model_entry in entry["models"]:
            chat_model, made = chat_model_model.objects.get_or_create(
                provider=provider,
                name=model_entry["name"],
                defaults={
                    "display_name": model_entry["display_name"],
                    "context_window": model_entry["context_window"],
                    "max_output_tokens": model_entry["max_output_tokens"],
                    **(
                        {"supports_tools": model_entry.get("supports_tools", True)}
                        if "supports_tools" in model_known
                        else {}
                    ),
                    **({"thinks": model_entry.get("thinks", False)} if "thinks" in model_known else {}),
                    **{
                        field: model_entry.get(field, "")
                        for field in ("description_en", "description_zh")
                        if field in model_known
                    },
                },
            )
            created += made
            start = datetime.fromisoformat(model_entry["effective_from"]).replace(tzinfo=UTC)
            _, made = price_model.objects.get_or_create(
                model=chat_model,
                effective_from=start,
                defaults={
                    "input_per_million": Decimal(model_entry["input_per_million"]),
                    "output_per_million": Decimal(model_entry["output_per_million"]),
                    "currency": model_entry["currency"],
                },
            )
            created += made
    return created
