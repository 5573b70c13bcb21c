"""The shipped text of each provider page, per section and language (Markdown).

Drawn from the catalog's notes and the lessons (/work/shared/reference: the key table of
provider-keys.zh.md, the billing and rate-limit notes). Facts that change (free
allowances, limits, links) are what admins replace in Django admin (learn.ProviderGuide);
the tables drawn from the catalog (models, prices, comparison) are not text and stay.
A provider an admin adds that is not listed here gets the general text.
"""

from __future__ import annotations

# The day this text was written: the first line of every page's changelog.
SHIPPED_ON = "2026-11-23"

Text = tuple[str, str]  # (English, Simplified Chinese)

_FACTS: dict[str, dict[str, Text]] = {
    "demo": {
        "free": ("Free: built into this site, no key and no network.", "免费：内置在本站，不需要密钥，也不需要联网。"),
        "signup": ("No sign-up: every logged-in user can use it.", "无需注册：登录本站即可使用。"),
        "features": (
            "- Streams its reply like a real model, so you can watch streaming and token billing work.\n"
            "- Explains how its own reply is counted and billed.\n"
            "- Also reachable without an account at this site's `/demo/v1`, so the lesson's code runs before the school has a provider key.",
            "- 像真实模型一样流式输出，可以观察流式传输和 token 计费的过程。\n"
            "- 会讲解自己这条回复是怎样计数、怎样计费的。\n"
            "- 也可以不登录直接通过本站的 `/demo/v1` 调用，学校还没有服务商密钥时也能运行课上的代码。",
        ),
        "strengths": (
            "No AI behind it: use it to learn the API, streaming and billing, not to get answers.",
            "它背后没有 AI：用来学习 API、流式输出和计费，而不是用来回答问题。",
        ),
        "limits": (
            "The public `/demo/v1` endpoint is limited per network address per minute; the counter resets at the start of each minute.",
            "公开的 `/demo/v1` 接口按网络地址每分钟限次，计数在每分钟开始时清零。",
        ),
        "key": (
            "No key is needed. With the openai SDK, any non-empty `api_key` works against `/demo/v1`.",
            "不需要密钥。用 openai SDK 调用 `/demo/v1` 时，`api_key` 填任意非空字符串即可。",
        ),
        "links": (
            "- [Use the API](/api/): this site's address, your keys and the lesson's code, filled in.\n"
            "- [Count tokens](/learn/tokenizer/): how a text is split into the tokens you are billed for.\n"
            "- The openai SDK for Python: https://github.com/openai/openai-python",
            "- [使用 API](/api/)：本站的接口地址、你的密钥和课上的代码，都已替你填好。\n"
            "- [数 token](/learn/tokenizer/)：一段文字怎样被切成计费用的 token。\n"
            "- Python 版 openai SDK：https://github.com/openai/openai-python",
        ),
    },
    "openai": {
        "free": ("Paid: pay as you go; no standing free allowance.", "付费：按量计费，没有长期免费额度。"),
        "signup": (
            "An account at platform.openai.com and a payment card (credit is bought in advance).",
            "需要 platform.openai.com 账号，并绑定银行卡（先充值后使用）。",
        ),
        "features": (
            "- The original chat-completions API that the openai SDK and most other providers copy.\n"
            "- Streaming, function tools, JSON-schema structured output.\n"
            "- Its models' tokenizers are public (tiktoken), so counts on this site are exact.",
            "- 最早的 chat-completions 接口，openai SDK 和大多数服务商都兼容它。\n"
            "- 支持流式输出、函数工具和 JSON Schema 结构化输出。\n"
            "- 模型的分词器是公开的（tiktoken），所以本站对它的 token 计数是准确的。",
        ),
        "strengths": (
            "GPT-4o mini: cheap and fast, good for classroom exercises. GPT-4o: stronger reasoning and writing. GPT-4.1 mini: a very long context for long documents.",
            "GPT-4o mini：便宜、快，适合课堂练习。GPT-4o：推理和写作更强。GPT-4.1 mini：上下文很长，适合长文档。",
        ),
        "limits": (
            "Requests and tokens per minute (RPM, TPM) and per day depend on the account's usage tier, which rises with the amount paid; the console's Limits page shows them. Minute limits roll over continuously.",
            "每分钟请求数（RPM）、每分钟 token 数（TPM）和每日限额取决于账户的用量等级，付费越多等级越高；控制台的 Limits 页面可以查看。每分钟限额是滚动计算的。",
        ),
        "key": (
            "1. Sign up and log in at https://platform.openai.com/.\n"
            "2. Open **API keys** and click **Create new secret key**.\n"
            "3. Copy the key at once: it is shown only once.\n"
            "4. Put it in `OPENAI_API_KEY` (a `.env` file), never in your code.",
            "1. 在 https://platform.openai.com/ 注册并登录。\n"
            "2. 打开 **API keys** 页面，点击 **Create new secret key**。\n"
            "3. 立即复制密钥：它只显示一次。\n"
            "4. 把它放进 `OPENAI_API_KEY`（`.env` 文件），不要写在代码里。",
        ),
        "links": (
            "- Docs: https://platform.openai.com/docs\n- Tokenizer: https://platform.openai.com/tokenizer\n- Status: https://status.openai.com",
            "- 文档：https://platform.openai.com/docs\n- 分词器：https://platform.openai.com/tokenizer\n- 服务状态：https://status.openai.com",
        ),
    },
    "openrouter": {
        "free": (
            "Limited free: some models are free to call (with small daily limits); the others are paid.",
            "部分免费：少数模型可免费调用（每日次数有限），其他模型付费。",
        ),
        "signup": (
            "An account at openrouter.ai; credit is bought in advance for paid models.",
            "需要 openrouter.ai 账号；使用付费模型需要先充值。",
        ),
        "features": (
            "- One key for many vendors' models (OpenAI, Anthropic, Google, DeepSeek, Meta...).\n"
            "- Switch the model name to compare models side by side in class.\n"
            "- One bill and one usage page for every model.",
            "- 一个密钥调用多家厂商的模型（OpenAI、Anthropic、Google、DeepSeek、Meta……）。\n"
            "- 只改模型名就能切换模型，方便课堂上横向对比。\n"
            "- 所有模型统一计费、统一查看用量。",
        ),
        "strengths": (
            "Good for comparing models: the same question to GPT-4o mini, DeepSeek V3 and Llama 3.1 8B, with one key.",
            "适合对比模型：用一个密钥，把同一个问题发给 GPT-4o mini、DeepSeek V3 和 Llama 3.1 8B。",
        ),
        "limits": (
            "Free models have a small number of requests per minute and per day (more after buying credit); daily counters reset at midnight UTC. Paid models follow the account's credit.",
            "免费模型每分钟和每天的请求数都很少（充值后会提高），每日计数在 UTC 零点清零。付费模型受账户余额限制。",
        ),
        "key": (
            "1. Sign up at https://openrouter.ai/.\n"
            "2. Click your avatar (top right), then **Keys**, then **Create Key**.\n"
            "3. Copy the key and keep it in `OPENROUTER_API_KEY`.",
            "1. 在 https://openrouter.ai/ 注册。\n"
            "2. 点击右上角个人头像 → **Keys** → **Create Key**。\n"
            "3. 复制密钥，保存在 `OPENROUTER_API_KEY` 中。",
        ),
        "links": (
            "- Docs: https://openrouter.ai/docs\n- Models and prices: https://openrouter.ai/models",
            "- 文档：https://openrouter.ai/docs\n- 模型与价格：https://openrouter.ai/models",
        ),
    },
    "deepseek": {
        "free": (
            "Trial: new accounts get a free token allowance (the lesson lists 5 million tokens, claimed on the home page after verification); then pay as you go in CNY.",
            "试用额度：新账户赠送免费 token（课程资料中为 500 万 tokens，需要在首页认证后领取），之后按量付费，人民币充值。",
        ),
        "signup": (
            "A phone number; real-name verification to claim the allowance.",
            "需要手机号注册；领取赠送额度需要实名认证。",
        ),
        "features": (
            "- OpenAI-compatible API.\n- DeepSeek-V3 for chat, DeepSeek-R1 for step-by-step reasoning.\n- Low prices in CNY.",
            "- 兼容 OpenAI 的接口。\n- DeepSeek-V3 用于对话，DeepSeek-R1 会逐步推理。\n- 人民币计价，价格低。",
        ),
        "strengths": (
            "DeepSeek-V3: strong Chinese and code at a low price. DeepSeek-R1: maths and logic problems, with longer (costlier) answers.",
            "DeepSeek-V3：中文和代码能力强，价格低。DeepSeek-R1：适合数学和逻辑题，回答更长（也更贵）。",
        ),
        "limits": (
            "No fixed per-minute limit is published; under heavy load requests wait longer or get 429. The balance is the real limit.",
            "官方没有公布固定的每分钟限额；高峰时请求会变慢或返回 429。账户余额才是真正的限制。",
        ),
        "key": (
            "1. Sign up at https://platform.deepseek.com/.\n"
            "2. On the left, open **API keys**, then **Create API key**.\n"
            "3. Copy the key (shown once) into `DEEPSEEK_API_KEY`.\n"
            "4. Claim the free allowance on the home page after verification.",
            "1. 在 https://platform.deepseek.com/ 注册。\n"
            "2. 左侧打开 **API keys** → **创建 API key**。\n"
            "3. 复制密钥（只显示一次），保存在 `DEEPSEEK_API_KEY` 中。\n"
            "4. 记得去首页完成认证，领取赠送额度。",
        ),
        "links": (
            "- Docs: https://api-docs.deepseek.com\n- Status: https://status.deepseek.com",
            "- 文档：https://api-docs.deepseek.com\n- 服务状态：https://status.deepseek.com",
        ),
    },
    "moonshot": {
        "free": (
            "Trial: new accounts get free credit (the lesson lists CNY 15, after verification); then pay as you go.",
            "试用额度：新账户赠送免费额度（课程资料中为 15.00 元，认证后领取），之后按量付费。",
        ),
        "signup": ("A phone number; real-name verification for the credit.", "需要手机号注册；领取额度需要实名认证。"),
        "features": (
            "- Kimi models with long contexts (8K, 32K, 128K).\n- OpenAI-compatible API.",
            "- Kimi 系列模型，上下文长度有 8K、32K、128K 可选。\n- 兼容 OpenAI 的接口。",
        ),
        "strengths": (
            "Long Chinese documents: summaries and questions about a whole article. Pick the smallest context that fits: it is cheaper.",
            "擅长长篇中文文档：总结全文、就整篇文章提问。选能装下内容的最小上下文版本，更便宜。",
        ),
        "limits": (
            "Limits (concurrent requests, RPM, TPM, tokens per day) rise with the total amount topped up; the console shows the account's tier.",
            "限额（并发数、RPM、TPM、每日 token 数）随累计充值金额提高；控制台可以查看账户等级。",
        ),
        "key": (
            "1. Sign up at https://platform.moonshot.cn/.\n"
            "2. On the left, open **API Key management**, then **New**.\n"
            "3. Copy the key into `MOONSHOT_API_KEY`.",
            "1. 在 https://platform.moonshot.cn/ 注册。\n"
            "2. 左侧打开 **API Key 管理** → **新建**。\n"
            "3. 复制密钥，保存在 `MOONSHOT_API_KEY` 中。",
        ),
        "links": ("- Docs: https://platform.moonshot.cn/docs", "- 文档：https://platform.moonshot.cn/docs"),
    },
    "glm": {
        "free": (
            "Limited free: GLM-4-Flash is free to call; new accounts get a token allowance (the lesson lists 25 million tokens, valid one month).",
            "部分免费：GLM-4-Flash 可免费调用；新账户赠送 token 额度（课程资料中为 2500 万 tokens，有效期 1 个月）。",
        ),
        "signup": ("A phone number; real-name verification.", "需要手机号注册并实名认证。"),
        "features": (
            "- GLM-4 family: Flash (free), Air (cheap), Plus (strongest).\n- OpenAI-compatible API at `/api/paas/v4`.",
            "- GLM-4 系列：Flash（免费）、Air（便宜）、Plus（最强）。\n- 兼容 OpenAI 的接口，地址为 `/api/paas/v4`。",
        ),
        "strengths": (
            "GLM-4-Flash: free, good enough for most classroom exercises. GLM-4-Plus: harder questions.",
            "GLM-4-Flash：免费，能满足大多数课堂练习。GLM-4-Plus：适合更难的问题。",
        ),
        "limits": (
            "Concurrent requests per model depend on the account's level; free models have the lowest. The console's rate-limit page shows them.",
            "每个模型的并发请求数取决于账户等级，免费模型最低；控制台的限流页面可以查看。",
        ),
        "key": (
            "1. Sign up at https://open.bigmodel.cn/.\n"
            "2. Open **API keys** in the user centre, then **Create API key**.\n"
            "3. Copy the key into `ZHIPUAI_API_KEY`.",
            "1. 在 https://open.bigmodel.cn/ 注册。\n"
            "2. 在个人中心打开 **API keys** → **创建 API key**。\n"
            "3. 复制密钥，保存在 `ZHIPUAI_API_KEY` 中。",
        ),
        "links": ("- Docs: https://open.bigmodel.cn/dev/api", "- 文档：https://open.bigmodel.cn/dev/api"),
    },
    "qwen": {
        "free": (
            "Trial: each model comes with a free token allowance for new accounts (the lesson's table lists none: check the console); then pay as you go.",
            "试用额度：新账户的每个模型都有免费 token 额度（课程资料的表格中写的是“无”，请以控制台为准），之后按量付费。",
        ),
        "signup": (
            "An Alibaba Cloud account with real-name verification; activate Model Studio (Bailian).",
            "需要阿里云账号并实名认证，开通百炼（Model Studio）服务。",
        ),
        "features": (
            "- Qwen models through DashScope's OpenAI-compatible mode.\n- Turbo (fast, cheap), Plus (balanced), Max (strongest).",
            "- 通过 DashScope 的 OpenAI 兼容模式调用通义千问。\n- Turbo（快、便宜）、Plus（均衡）、Max（最强）。",
        ),
        "strengths": (
            "Qwen Turbo for quick exercises, Qwen Plus for everyday use, Qwen Max for hard questions.",
            "Qwen Turbo 适合快速练习，Qwen Plus 适合日常使用，Qwen Max 适合难题。",
        ),
        "limits": (
            "RPM and TPM limits per model are listed in the Model Studio documentation; minute limits roll over continuously.",
            "每个模型的 RPM 和 TPM 限额见百炼文档；每分钟限额是滚动计算的。",
        ),
        "key": (
            "1. Log in to https://bailian.console.aliyun.com/.\n"
            "2. Open **API-KEY management**, then **Create new API-KEY**.\n"
            "3. Copy the key into `DASHSCOPE_API_KEY`.",
            "1. 登录 https://bailian.console.aliyun.com/。\n"
            "2. 打开 **API-KEY 管理** → **创建新的 API-KEY**。\n"
            "3. 复制密钥，保存在 `DASHSCOPE_API_KEY` 中。",
        ),
        "links": (
            "- Docs: https://help.aliyun.com/zh/model-studio/",
            "- 文档：https://help.aliyun.com/zh/model-studio/",
        ),
    },
    "ernie": {
        "free": (
            "Limited free: ERNIE Speed and ERNIE Lite are free; the others are paid.",
            "部分免费：ERNIE Speed 和 ERNIE Lite 免费，其他模型付费。",
        ),
        "signup": (
            "A Baidu AI Cloud account with real-name verification; the service must be switched on (check in the personal centre).",
            "需要百度智能云账号并实名认证，并开通服务（可在个人中心确认）。",
        ),
        "features": (
            "- ERNIE models on Qianfan.\n- Two kinds of credential: an application's **API Key + Secret Key** (exchanged for an access token) or a single Qianfan bearer key.",
            "- 千帆平台上的文心系列模型。\n- 两种凭证：应用的 **API Key + Secret Key**（先换取访问令牌），或千帆的单个 API Key。",
        ),
        "strengths": (
            "ERNIE Speed: free, with a 128K context. ERNIE 4.0: strongest, and much more expensive.",
            "ERNIE Speed：免费，128K 上下文。ERNIE 4.0：能力最强，但贵得多。",
        ),
        "limits": (
            "Each application has RPM and TPM limits per model (shown in the Qianfan console); free models have low ones.",
            "每个应用对每个模型有 RPM 和 TPM 限额（在千帆控制台查看），免费模型的限额较低。",
        ),
        "key": (
            "1. Log in to the Qianfan console: https://console.bce.baidu.com/qianfan/ais/console/applicationConsole/application\n"
            "2. On the left, **Application access** → **Create application** (the name must be unique).\n"
            "3. Copy **both** the API Key and the Secret Key (`QIANFAN_API_KEY`, `QIANFAN_SECRET_KEY`).",
            "1. 登录千帆控制台：https://console.bce.baidu.com/qianfan/ais/console/applicationConsole/application\n"
            "2. 左侧 **应用接入** → **创建应用**（名称不能重复）。\n"
            "3. **同时**复制 API Key 和 Secret Key（`QIANFAN_API_KEY`、`QIANFAN_SECRET_KEY`）。",
        ),
        "links": (
            "- Docs: https://cloud.baidu.com/doc/WENXINWORKSHOP/index.html",
            "- 文档：https://cloud.baidu.com/doc/WENXINWORKSHOP/index.html",
        ),
    },
    "custom": {
        "free": (
            "Free to call: the model runs on the school's own computer (Ollama, vLLM) or behind its proxy.",
            "调用免费：模型运行在学校自己的电脑上（Ollama、vLLM）或学校的代理后面。",
        ),
        "signup": ("No sign-up: install the server, download a model.", "无需注册：安装服务，下载模型即可。"),
        "features": (
            "- Any server that speaks the OpenAI API.\n- Nothing leaves the school's network.",
            "- 任何兼容 OpenAI 接口的服务都可以。\n- 数据不出学校网络。",
        ),
        "strengths": (
            "Small local models are weaker than the cloud ones but free and private: good for experiments.",
            "本地小模型不如云端模型强，但免费、私密，适合做实验。",
        ),
        "limits": (
            "Limited by the computer's memory and speed: one large request at a time is typical.",
            "受电脑内存和速度限制：通常一次只能处理一个大请求。",
        ),
        "key": (
            "Ollama needs no real key: any text works (for example `ollama`). Install it from https://ollama.com, then run `ollama pull llama3.2`.",
            "Ollama 不需要真正的密钥，填任意文字即可（例如 `ollama`）。从 https://ollama.com 安装后运行 `ollama pull llama3.2`。",
        ),
        "links": ("- Ollama: https://ollama.com", "- Ollama：https://ollama.com"),
    },
}

_GENERAL: dict[str, Text] = {
    "free": ("See the provider's pricing page.", "请查看服务商的价格页面。"),
    "signup": ("An account with the provider.", "需要在服务商处注册账号。"),
    "features": ("- OpenAI-compatible chat-completions API.", "- 兼容 OpenAI 的 chat-completions 接口。"),
    "strengths": ("", ""),
    "limits": ("See the provider's console.", "请查看服务商的控制台。"),
    "key": ("Create a key in the provider's console and keep it secret.", "在服务商的控制台创建密钥，并妥善保密。"),
    "links": ("", ""),
}

_LIMITS_TAIL: Text = (
    "\n\nOn this site your class's quota applies as well: when it is spent, requests are refused until it resets (the chat page shows when).",
    "\n\n在本站，你所在班级的配额也同样适用：用完后请求会被拒绝，直到配额重置（聊天页面会显示重置时间）。",
)

_BEST_PRACTICE: Text = (
    "- **Use the free allowances first**: the demo model, GLM-4-Flash, ERNIE Speed, OpenRouter's free models.\n"
    "- **Save tokens**: the whole conversation is sent again on every turn, so start a new conversation for a new topic; keep prompts short; set `max_tokens`.\n"
    "- **Count before you send**: paste your prompt into the tokenizer to see its tokens and cost.\n"
    "- **Retry 429 with exponential backoff**: wait 1 s, 2 s, 4 s... (or what `Retry-After` says) before trying again, and give up after a few tries.\n"
    "- **Keep the key out of the code**: `.env` file, `.env` in `.gitignore`.\n\n"
    "```python\n"
    "import time\n"
    "from openai import OpenAI, RateLimitError\n\n"
    "client = OpenAI()\n\n"
    "def ask(messages, model, tries=5):\n"
    "    for attempt in range(tries):\n"
    "        try:\n"
    "            return client.chat.completions.create(model=model, messages=messages)\n"
    "        except RateLimitError:\n"
    "            time.sleep(2 ** attempt)  # 1, 2, 4, 8 ... seconds\n"
    '    raise RuntimeError("still rate limited")\n'
    "```",
    "- **先用免费额度**：演示模型、GLM-4-Flash、ERNIE Speed、OpenRouter 的免费模型。\n"
    "- **节省 token**：每一轮都会把整段对话重新发送一次，所以换话题时新建对话；提示词写得简洁；设置 `max_tokens`。\n"
    "- **发送前先数一数**：把提示词粘贴到分词器里，看看它有多少 token、要花多少钱。\n"
    "- **遇到 429 用指数退避重试**：依次等待 1 秒、2 秒、4 秒……（或按 `Retry-After` 的时间）再重试，几次后放弃。\n"
    "- **密钥不要写进代码**：放在 `.env` 文件里，并把 `.env` 加入 `.gitignore`。\n\n"
    "```python\n"
    "import time\n"
    "from openai import OpenAI, RateLimitError\n\n"
    "client = OpenAI()\n\n"
    "def ask(messages, model, tries=5):\n"
    "    for attempt in range(tries):\n"
    "        try:\n"
    "            return client.chat.completions.create(model=model, messages=messages)\n"
    "        except RateLimitError:\n"
    "            time.sleep(2 ** attempt)  # 依次等待 1、2、4、8……秒\n"
    '    raise RuntimeError("仍然被限流")\n'
    "```",
)

_FAQ: Text = (
    "**Why does my count differ from the provider's bill?** Only OpenAI publishes its models' tokenizers. For other providers this site estimates with the closest tiktoken encoding; the `usage` in each response is the real count.\n\n"
    "**I get 401.** The key is wrong, revoked, or sent to the wrong base URL: the key and the base URL must come from the same provider.\n\n"
    "**I get 429.** Too many requests or tokens per minute, or the allowance is spent: wait and retry with backoff (see Best practice).\n\n"
    "**My key leaked.** Delete it in the provider's console at once and create a new one; the account and its balance stay yours. For this site's own keys, use [My API keys](/api-keys/).",
    "**为什么我数的 token 和服务商账单不一样？** 只有 OpenAI 公开了模型的分词器。其他服务商的模型，本站用最接近的 tiktoken 编码估算；每次响应里的 `usage` 才是真实数量。\n\n"
    "**返回 401 怎么办？** 密钥错误、已作废，或者发到了错误的地址：密钥和 base URL 必须来自同一家服务商。\n\n"
    "**返回 429 怎么办？** 每分钟请求数或 token 数超限，或者额度用完了：稍等，并用退避策略重试（见“最佳实践”）。\n\n"
    "**密钥泄露了怎么办？** 立即在服务商控制台删除它，再创建一个新的；账号和余额不受影响，无需重新注册。本站自己的密钥请在[我的 API 密钥](/api-keys/)页面处理。",
)

_CHANGELOG: Text = (
    f"- {SHIPPED_ON}: first version of this page, from the catalog and the lessons.",
    f"- {SHIPPED_ON}：本页第一版，内容来自服务商目录和课程资料。",
)


def _pick(text: Text, language: str) -> str:
    return text[1] if language.startswith("zh") else text[0]


def guide_default_markdown(*, slug: str, language: str, section: str) -> str:
    """The shipped Markdown of one section of a provider's page ("" when it has none)."""
    facts = {**_GENERAL, **_FACTS.get(slug, {})}
    if section == "overview":
        return "\n\n".join(_pick(facts[name], language) for name in ("free", "signup"))
    if section in ("features", "limits", "key", "links"):
        text = _pick(facts[section], language)
        return text + _pick(_LIMITS_TAIL, language) if section == "limits" else text
    if section == "models":
        return _pick(facts["strengths"], language)
    if section == "best_practice":
        return _pick(_BEST_PRACTICE, language)
    if section == "faq":
        return _pick(_FAQ, language)
    if section == "changelog":
        return _pick(_CHANGELOG, language)
    return ""
