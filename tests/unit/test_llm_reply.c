/*
 * test_llm_reply.c -- unit tests of lib/llm_reply.c: request bodies, the
 * reply shape of real Azure (shared/bench/fake-azure/response.json), tool
 * calls, streamed chunks, error classification.
 */
#include "autoconfig.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/llm_reply.h"
#include "tests/unit/tap.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* A real Azure reply, as in shared/bench/fake-azure/response.json. */
static const char azure_reply[] =
    "{\"id\":\"chatcmpl-BenchAzure0000000000000000001\",\"object\":\"chat.completion\","
    "\"created\":1732406400,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Insight Ingenious is a framework.\","
    "\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\","
    "\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},\"sexual\":{\"filtered\":false,"
    "\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}],"
    "\"usage\":{\"prompt_tokens\":57,\"completion_tokens\":78,\"total_tokens\":135},"
    "\"system_fingerprint\":\"fp_bench0001\",\"prompt_filter_results\":[{\"prompt_index\":0,"
    "\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}]}";

static const char tool_reply[] =
    "{\"id\":\"x\",\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\","
    "\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
    "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]}}],"
    "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}";

static const char cf_prompt[] =
    "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering "
    "Azure OpenAI's content management policy.\",\"type\":null,\"param\":\"prompt\","
    "\"code\":\"content_filter\",\"status\":400,\"innererror\":{\"code\":"
    "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{\"violence\":"
    "{\"filtered\":true,\"severity\":\"high\"}}}}}";

static const char ctx_new[] =
    "{\"error\":{\"message\":\"This model's maximum context length is 128000 tokens. "
    "However, your messages resulted in 130000 tokens.\",\"type\":\"invalid_request_error\","
    "\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}";

static const char ctx_old[] =
    "{\"error\":{\"message\":\"This model's maximum context length is 4096 tokens, however "
    "you requested 5000 tokens (4000 in your prompt; 1000 for the completion).\","
    "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}";

static void
delta_collect(void *arg, const char *text, size_t len)
{
	buf_append(arg, text, len);
	buf_putc(arg, '|');
}

static int
feed(struct llm_reply_stream *s, const char *chunk, struct arena *a,
    struct llm_reply *r, struct buf *deltas, struct err *e)
{
	return llm_reply_stream_chunk(s, chunk, strlen(chunk), a, r,
	    delta_collect, deltas, e);
}

int
main(void)
{
	struct arena *a = arena_create(0);
	struct llm_reply r;
	struct err e;
	struct buf b = BUF_INIT, deltas = BUF_INIT;
	struct llm_request req;
	struct llm_message msgs[3];
	struct llm_tool tool;
	struct llm_tool_call call = { "call_1", "get_weather", "{\"city\":\"Oslo\"}" };
	struct llm_reply_stream s;
	char *filter, *code;
	cJSON *j;

	/* ---- request bodies ---- */
	memset(&req, 0, sizeof(req));
	memset(msgs, 0, sizeof(msgs));
	ok(llm_reply_build_body(&req, NULL, &b, &e) == -1 && e.status == 500,
	    "no messages is refused");
	msgs[0].role = "user";
	msgs[0].content = "hi \"there\"\n";
	msgs[1].role = "assistant";
	msgs[1].tool_calls = &call;
	msgs[1].n_tool_calls = 1;
	msgs[2].role = "tool";
	msgs[2].content = "12 degrees";
	msgs[2].tool_call_id = "call_1";
	tool.name = "get_weather";
	tool.description = "weather by city";
	tool.parameters = "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}";
	req.messages = msgs;
	req.n_messages = 3;
	req.tools = &tool;
	req.n_tools = 1;
	req.tool_choice = "auto";
	req.json_response = true;
	req.has_temperature = true;
	req.temperature = 0.2;
	req.max_tokens = 100;
	req.stream = true;
	ok(llm_reply_build_body(&req, "gpt-x", &b, &e) == 0, "a full body builds");
	j = cJSON_Parse(buf_cstr(&b));
	ok(j != NULL, "the body is JSON");
	is_str(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j,
	    "messages"), 0), "content")->valuestring, "hi \"there\"\n",
	    "content survives escaping");
	ok(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j,
	    "messages"), 1), "content")), "assistant with tool calls has content null");
	is_str(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 1),
	    "tool_calls"), 0), "function"), "arguments")->valuestring,
	    "{\"city\":\"Oslo\"}", "tool call arguments are sent as a string");
	is_str(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j,
	    "messages"), 2), "tool_call_id")->valuestring, "call_1",
	    "tool result carries tool_call_id");
	ok(cJSON_IsObject(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(
	    cJSON_GetObjectItem(j, "tools"), 0), "function"), "parameters")),
	    "tool parameters are a JSON object, not a string");
	is_str(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "response_format"),
	    "type")->valuestring, "json_object", "json response format");
	ok(cJSON_GetObjectItem(j, "temperature")->valuedouble == 0.2 &&
	    cJSON_GetObjectItem(j, "max_tokens")->valueint == 100,
	    "temperature and max_tokens");
	ok(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"),
	    "include_usage")), "stream asks for usage");
	is_str(cJSON_GetObjectItem(j, "model")->valuestring, "gpt-x", "model sent");
	cJSON_Delete(j);
	buf_reset(&b);
	tool.parameters = "[1]";
	ok(llm_reply_build_body(&req, NULL, &b, &e) == -1 && e.status == 500,
	    "tool parameters that are not an object are refused");
	tool.parameters = NULL;
	buf_reset(&b);
	ok(llm_reply_build_body(&req, NULL, &b, &e) == 0 &&
	    strstr(buf_cstr(&b), "\"model\"") == NULL &&
	    strstr(buf_cstr(&b), "\"parameters\":{\"type\":\"object\"") != NULL,
	    "no model for Azure; default parameters schema");

	/* ---- complete replies ---- */
	memset(&r, 0, sizeof(r));
	ok(llm_reply_parse(azure_reply, strlen(azure_reply), a, &r, &e) == 0,
	    "the real Azure reply parses");
	is_str(r.content, "Insight Ingenious is a framework.", "content");
	is_str(r.finish_reason, "stop", "finish_reason");
	ok(r.has_usage && r.prompt_tokens == 57 && r.completion_tokens == 78 &&
	    r.total_tokens == 135, "usage");
	is_str(r.model, "gpt-4o-2024-08-06", "model");
	ok(r.content_filter_results != NULL &&
	    strstr(r.content_filter_results, "\"self_harm\"") != NULL,
	    "content_filter_results kept as JSON");
	ok(r.prompt_filter_results != NULL &&
	    strstr(r.prompt_filter_results, "prompt_index") != NULL,
	    "prompt_filter_results kept as JSON");

	memset(&r, 0, sizeof(r));
	ok(llm_reply_parse(tool_reply, strlen(tool_reply), a, &r, &e) == 0 &&
	    r.content == NULL && r.n_tool_calls == 1, "a tool-call reply parses");
	is_str(r.tool_calls[0].id, "call_1", "tool call id");
	is_str(r.tool_calls[0].name, "get_weather", "tool call name");
	is_str(r.tool_calls[0].arguments, "{\"city\":\"Oslo\"}", "tool call arguments");

	memset(&r, 0, sizeof(r));
	ok(llm_reply_parse(S("{\"choices\":[{\"message\":{}}]}"), a, &r, &e) == -1 &&
	    e.status == 502, "a choice with nothing in it is 502");
	ok(llm_reply_parse(S("{\"choices\":[]}"), a, &r, &e) == -1 && e.status == 502,
	    "no choices is 502");
	ok(llm_reply_parse(S("{\"choices\":[{\"mess"), a, &r, &e) == -1 &&
	    e.status == 502, "truncated JSON is 502");
	ok(llm_reply_parse(S("[]"), a, &r, &e) == -1, "a list is not a reply");
	memset(&r, 0, sizeof(r));
	ok(llm_reply_parse(S("{\"choices\":[{\"finish_reason\":\"content_filter\","
	    "\"message\":{\"role\":\"assistant\"}}],\"usage\":{\"prompt_tokens\":-5,"
	    "\"completion_tokens\":\"x\"}}"), a, &r, &e) == 0 &&
	    strcmp(r.finish_reason, "content_filter") == 0 && r.prompt_tokens == 0 &&
	    r.completion_tokens == 0, "a filtered completion parses; bad counts are 0");

	/* ---- streamed replies ---- */
	memset(&r, 0, sizeof(r));
	llm_reply_stream_init(&s, 0);
	ok(feed(&s, "{\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}]}",
	    a, &r, &deltas, &e) == 0, "the prompt-filter head chunk");
	ok(feed(&s, "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"role\":\"assistant\",\"content\":\"\"}}]}", a, &r, &deltas, &e) == 0,
	    "the role chunk");
	ok(feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
	    a, &r, &deltas, &e) == 0 &&
	    feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\"}}]}",
	    a, &r, &deltas, &e) == 0, "content chunks");
	ok(feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}",
	    a, &r, &deltas, &e) == 0, "the finish chunk");
	ok(feed(&s, "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
	    "\"total_tokens\":5}}", a, &r, &deltas, &e) == 0, "the usage chunk");
	ok(llm_reply_stream_finish(&s, a, &r, &e) == -1 && e.status == 502,
	    "no [DONE] yet: truncated");
	ok(feed(&s, "[DONE]", a, &r, &deltas, &e) == 0, "[DONE]");
	ok(feed(&s, "{}", a, &r, &deltas, &e) == -1, "data after [DONE] is an error");
	ok(llm_reply_stream_finish(&s, a, &r, &e) == 0, "the stream finishes");
	is_str(r.content, "Hello \xc3\xa9", "deltas concatenate to the content");
	is_str(buf_cstr(&deltas), "Hel|lo \xc3\xa9|", "each delta reported once");
	ok(r.has_usage && r.total_tokens == 5 && strcmp(r.finish_reason, "stop") == 0 &&
	    strcmp(r.id, "c1") == 0 && r.prompt_filter_results != NULL,
	    "usage, finish, id and prompt filters from the stream");
	llm_reply_stream_free(&s);

	memset(&r, 0, sizeof(r));
	llm_reply_stream_init(&s, 0);
	ok(feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"sql\","
	    "\"arguments\":\"\"}}]}}]}", a, &r, &deltas, &e) == 0 &&
	    feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}}]}", a, &r, &deltas, &e) == 0 &&
	    feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"function\":{\"arguments\":\"1}\"}}]}}]}", a, &r, &deltas, &e) == 0 &&
	    feed(&s, "[DONE]", a, &r, &deltas, &e) == 0 &&
	    llm_reply_stream_finish(&s, a, &r, &e) == 0 && r.n_tool_calls == 1,
	    "a streamed tool call assembles");
	is_str(r.tool_calls[0].arguments, "{\"q\":1}", "streamed arguments joined");
	is_str(r.tool_calls[0].name, "sql", "streamed tool name");
	llm_reply_stream_free(&s);

	llm_reply_stream_init(&s, 0);
	ok(feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":3}]}}]}",
	    a, &r, &deltas, &e) == -1, "a tool call index that skips is an error");
	llm_reply_stream_free(&s);
	llm_reply_stream_init(&s, 10);
	ok(feed(&s, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"0123456789ab\"}}]}",
	    a, &r, &deltas, &e) == -1 && e.status == 502, "the stream cap holds");
	llm_reply_stream_free(&s);
	llm_reply_stream_init(&s, 0);
	ok(feed(&s, "{\"choices\":[{\"delta\":{\"content\":\"x", a, &r, &deltas, &e) == -1,
	    "a broken chunk is an error");
	llm_reply_stream_free(&s);

	/* ---- error bodies ---- */
	ok(llm_reply_classify_error(cf_prompt, strlen(cf_prompt), a, &filter, &code) ==
	    LLM_REPLY_ERROR_CONTENT_FILTER, "content filter detected");
	ok(filter != NULL && strstr(filter, "\"violence\"") != NULL,
	    "content_filter_result returned");
	is_str(code, "content_filter", "code returned");
	ok(llm_reply_classify_error(ctx_new, strlen(ctx_new), a, NULL, NULL) ==
	    LLM_REPLY_ERROR_CONTEXT_LENGTH, "context_length_exceeded detected");
	ok(llm_reply_classify_error(ctx_old, strlen(ctx_old), a, NULL, NULL) ==
	    LLM_REPLY_ERROR_CONTEXT_LENGTH, "the reference's message form detected");
	ok(llm_reply_classify_error(S("{\"error\":{\"code\":\"429\"}}"), a, NULL, &code) ==
	    LLM_REPLY_ERROR_OTHER && code != NULL && strcmp(code, "429") == 0,
	    "other errors are other, code kept");
	ok(llm_reply_classify_error(S("<html>"), a, &filter, &code) ==
	    LLM_REPLY_ERROR_OTHER && filter == NULL && code == NULL,
	    "a non-JSON body is other");

	buf_free(&b);
	buf_free(&deltas);
	arena_destroy(a);
	return tap_done();
}
