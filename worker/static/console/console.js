/*
 * console.js -- the web console (worker/static/console/, served at
 * /console/ by worker/routes_docs.c).  Plain browser JavaScript, no build
 * step, no library, no request outside this server.  It logs in with
 * POST /api/v1/auth/login when authentication is on and keeps the tokens in
 * this closure only (never localStorage, sessionStorage or a cookie); every
 * view is drawn from the API's routes:
 *   chat           POST /api/v1/chat/stream (stream_events: agent steps, tokens)
 *   conversations  GET /api/v1/conversations, /conversations/{id}, PUT feedback
 *   prompts        /api/v1/revisions/list, /prompts/list|view|update|versions|usage
 *   flows          GET /api/v1/workflows, GET/POST /api/v1/admin/reload
 *   usage          GET /api/v1/usage?by=&days= (charts drawn as SVG here)
 * Text from the server is always set with textContent, never as HTML.
 */
'use strict';

(function () {
	const S = {
		token: null, refresh: null,  // in memory only
		authOn: false, user: null, admin: false,
		thread: null, busy: false, loaded: {}, versions: [],
	};
	const SVG = 'http://www.w3.org/2000/svg';
	const $ = (id) => document.getElementById(id);

	/* el('li', {class: 'x'}, 'text', child...): an element, text as text */
	function el(tag, attrs, ...kids) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === null || v === undefined || v === false)
				continue;
			if (k === 'class')
				e.className = v;
			else if (k.startsWith('on'))
				e.addEventListener(k.slice(2), v);
			else
				e.setAttribute(k, v === true ? '' : String(v));
		}
		for (const k of kids)
			if (k !== null && k !== undefined)
				e.append(k instanceof Node ? k : document.createTextNode(String(k)));
		return e;
	}

	function status(msg, bad) {
		const s = $('status');
		s.textContent = msg || '';
		s.classList.toggle('error', !!bad);
	}

	/* ---- the API ---------------------------------------------------- */

	class ApiError extends Error {
		constructor(code, msg) { super(msg); this.code = code; }
	}

	/* The text of an error body of any of the API's three shapes. */
	function errorText(code, j, text) {
		let m = null;
		if (j && typeof j.detail === 'string')
			m = j.detail;
		else if (j && j.error && typeof j.error.message === 'string')
			m = j.error.message;
		else if (j && j.detail)
			m = JSON.stringify(j.detail);
		if (m === null)
			m = text ? text.slice(0, 300) : 'no answer body';
		if (j && j.request_id)
			m += ' (request ' + j.request_id + ')';
		return code + ': ' + m;
	}

	async function api(method, path, body, retried) {
		const headers = {};
		if (body !== undefined)
			headers['Content-Type'] = 'application/json';
		if (S.token)
			headers.Authorization = 'Bearer ' + S.token;
		const r = await fetch(path, {
			method, headers, cache: 'no-store', credentials: 'omit',
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		if (r.status === 401 && S.authOn && !retried) {
			if (S.refresh && await refreshToken())
				return api(method, path, body, true);
			logout('Your session has ended: log in again.');
		}
		return r;
	}

	async function apiJson(method, path, body) {
		const r = await api(method, path, body);
		const text = await r.text();
		let j = null;
		try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
		if (!r.ok)
			throw new ApiError(r.status, errorText(r.status, j, text));
		return j;
	}

	const enc = encodeURIComponent;

	/* ---- authentication --------------------------------------------- */

	async function refreshToken() {
		try {
			const r = await fetch('/api/v1/auth/refresh', {
				method: 'POST', credentials: 'omit', cache: 'no-store',
				headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify({ refresh_token: S.refresh }),
			});
			if (!r.ok)
				return false;
			const j = await r.json();
			S.token = j.access_token;
			if (j.refresh_token)
				S.refresh = j.refresh_token;
			return !!S.token;
		} catch (e) {
			return false;
		}
	}

	function logout(msg) {
		S.token = S.refresh = S.user = null;
		S.admin = false;
		S.loaded = {};
		$('nav').hidden = true;
		$('who').hidden = true;
		showView('login');
		status(msg || 'Logged out.');
		$('login-user').focus();
	}

	async function login(ev) {
		ev.preventDefault();
		const user = $('login-user').value.trim(), pass = $('login-pass').value;
		$('login-error').textContent = '';
		if (!user || !pass) {
			$('login-error').textContent = 'Enter a user name and a password.';
			return;
		}
		$('login-submit').disabled = true;
		try {
			const r = await fetch('/api/v1/auth/login', {
				method: 'POST', credentials: 'omit', cache: 'no-store',
				headers: { 'Content-Type': 'application/json' },
				body: JSON.stringify({ username: user, password: pass }),
			});
			const text = await r.text();
			let j = null;
			try { j = JSON.parse(text); } catch (e) { j = null; }
			if (!r.ok) {
				$('login-error').textContent = errorText(r.status, j, text);
				return;
			}
			S.token = j.access_token;
			S.refresh = j.refresh_token || null;
			$('login-pass').value = '';
			await enter();
		} catch (e) {
			$('login-error').textContent = 'The server did not answer: ' + e.message;
		} finally {
			$('login-submit').disabled = false;
		}
	}

	/* After login (or at once with authentication off): who, and the views. */
	async function enter() {
		if (S.authOn) {
			const v = await apiJson('GET', '/api/v1/auth/verify');
			S.user = v.username;
		}
		const r = await api('GET', '/api/v1/admin/reload');
		S.admin = r.ok;
		$('who-name').textContent = S.authOn ?
			'Logged in as ' + S.user + (S.admin ? ' (administrator)' : '') :
			'Authentication is off';
		$('logout').hidden = !S.authOn;
		$('who').hidden = false;
		$('nav').hidden = false;
		$('chat-user').parentElement.hidden = S.authOn;
		$('conv-user').parentElement.parentElement.hidden = S.authOn && !S.admin;
		status('');
		showView(location.hash.slice(1) || 'chat');
	}

	/* ---- views ------------------------------------------------------ */

	const VIEWS = ['login', 'chat', 'conversations', 'prompts', 'flows', 'usage'];
	const LOADERS = {
		chat: loadChat, conversations: loadThreads, prompts: loadRevisions,
		flows: loadFlows, usage: loadUsage,
	};

	const FRESH = ['conversations', 'flows', 'usage'];

	function showView(name) {
		if (!VIEWS.includes(name) || (name !== 'login' && $('nav').hidden))
			name = $('nav').hidden ? 'login' : 'chat';
		for (const v of VIEWS)
			$('view-' + v).hidden = v !== name;
		for (const b of document.querySelectorAll('#nav button')) {
			if (b.dataset.view === name)
				b.setAttribute('aria-current', 'page');
			else
				b.removeAttribute('aria-current');
		}
		if (name !== 'login' && location.hash !== '#' + name)
			history.replaceState(null, '', '#' + name);
		if (name !== 'login')
			status('');     /* the last section's message is not this one's */
		/* chat and prompts keep what is typed; the others show what is now */
		if (LOADERS[name] && (!S.loaded[name] || FRESH.includes(name))) {
			S.loaded[name] = true;
			LOADERS[name]().catch((e) => status(e.message, true));
		}
	}

	/* ---- chat ------------------------------------------------------- */

	async function loadChat() {
		const j = await apiJson('GET', '/api/v1/workflows');
		const sel = $('chat-flow');
		const keep = sel.value;
		sel.replaceChildren();
		for (const w of j.workflows || []) {
			sel.append(el('option', { value: w.workflow },
				w.workflow + (w.ready === false ? ' (not configured)' : '')));
		}
		if (keep)
			sel.value = keep;
		await loadChatThreads();
	}

	async function loadChatThreads() {
		const sel = $('chat-thread');
		const j = await apiJson('GET', '/api/v1/conversations?limit=50');
		sel.replaceChildren(el('option', { value: '' }, 'New thread'));
		for (const t of j.threads || [])
			sel.append(el('option', { value: t.thread_id },
				(t.preview || t.thread_id).slice(0, 60) + ' · ' + t.flow +
				' · ' + t.messages + ' messages'));
		sel.value = S.thread || '';
		if (sel.value !== (S.thread || '') && S.thread)
			sel.append(el('option', { value: S.thread, selected: true }, S.thread));
	}

	function setThread(id) {
		S.thread = id || null;
		$('chat-thread-id').textContent = S.thread ? 'thread ' + S.thread : 'a new thread';
	}

	async function openThreadInChat(id, flow) {
		setThread(id);
		$('chat-log').replaceChildren();
		$('chat-steps').replaceChildren();
		$('chat-followups').replaceChildren();
		showView('chat');
		await loadChatThreads();
		if (flow)
			$('chat-flow').value = flow;
		const msgs = await apiJson('GET', '/api/v1/conversations/' + enc(id) + '?limit=1000');
		for (const m of msgs)
			$('chat-log').append(messageItem(m));
		$('chat-prompt').focus();
	}

	function messageItem(m) {
		const role = m.role === 'user' ? 'user' : 'assistant';
		return el('li', { class: role },
			el('span', { class: 'meta' }, m.role + (m.timestamp ? ' · ' + m.timestamp : '')),
			m.content || '');
	}

	function addStep(text, cls) {
		const li = el('li', { class: cls || null }, text);
		$('chat-steps').append(li);
		return li;
	}

	async function sendChat(ev) {
		if (ev)
			ev.preventDefault();
		const prompt = $('chat-prompt').value;
		const flow = $('chat-flow').value;
		if (S.busy)
			return;
		if (!prompt.trim()) {
			status('Type a message first.', true);
			$('chat-prompt').focus();
			return;
		}
		if (!flow) {
			status('No flow to send to: the server lists none.', true);
			return;
		}
		const body = { user_prompt: prompt, conversation_flow: flow, stream_events: true };
		if (S.thread)
			body.thread_id = S.thread;
		if (!S.authOn && $('chat-user').value.trim())
			body.user_id = $('chat-user').value.trim();
		S.busy = true;
		$('chat-send').disabled = true;
		status('Sending…');
		const log = $('chat-log');
		log.append(el('li', { class: 'user' }, el('span', { class: 'meta' }, 'user'), prompt));
		const text = document.createTextNode('');
		const reply = el('li', { class: 'assistant', 'aria-busy': 'true' },
			el('span', { class: 'meta' }, 'assistant · ' + flow), text);
		log.append(reply);
		log.scrollTop = log.scrollHeight;
		$('chat-steps').replaceChildren();
		$('chat-followups').replaceChildren();
		$('chat-tokens').textContent = '';
		let steps = {}, total = 0, done = false, final = null;
		try {
			const r = await api('POST', '/api/v1/chat/stream', body);
			if (!r.ok) {
				const t = await r.text();
				let j = null;
				try { j = JSON.parse(t); } catch (e) { j = null; }
				throw new ApiError(r.status, errorText(r.status, j, t));
			}
			$('chat-prompt').value = '';
			const reader = r.body.getReader();
			const dec = new TextDecoder();
			let buf = '';
			for (;;) {
				const { value, done: end } = await reader.read();
				if (value)
					buf += dec.decode(value, { stream: true });
				let i;
				while ((i = buf.indexOf('\n\n')) >= 0) {
					const frame = buf.slice(0, i);
					buf = buf.slice(i + 2);
					for (const line of frame.split('\n')) {
						if (!line.startsWith('data:'))
							continue;
						const ev = JSON.parse(line.slice(5).trim());
						onEvent(ev);
					}
				}
				if (end)
					break;
			}
			if (!done)
				throw new Error('the stream ended before its "done" event');
			status('Answered' + (final && final.thread_id ? ' (thread ' + final.thread_id + ')' : '') + '.');
		} catch (e) {
			reply.className = 'error';
			text.textContent = (text.textContent ? text.textContent + '\n' : '') + e.message;
			status(e.message, true);
		} finally {
			reply.removeAttribute('aria-busy');
			S.busy = false;
			$('chat-send').disabled = false;
			log.scrollTop = log.scrollHeight;
		}
		if (final && final.thread_id)
			loadChatThreads().catch(() => {});

		function onEvent(ev) {
			const d = ev.data || {};
			switch (ev.event) {
			case 'agent_start':
				steps[d.agent] = addStep(d.agent + ': calling ' + (d.model || 'the model') + '…');
				break;
			case 'agent_end': {
				const li = steps[d.agent] || addStep(d.agent);
				li.textContent = d.agent + ': ' + (d.ok ? 'answered' : 'failed') + ', ' +
					d.prompt_tokens + ' prompt + ' + d.completion_tokens + ' completion = ' +
					d.total_tokens + ' tokens';
				li.className = d.ok ? '' : 'failed';
				total += d.total_tokens || 0;
				$('chat-tokens').textContent = 'Tokens this turn: ' + total;
				break;
			}
			case 'tool_call':
				addStep(d.agent + ' → tool ' + d.tool + '(' + (d.arguments || '') + ')');
				break;
			case 'tool_result':
				addStep(d.agent + ' ← ' + d.tool + ': ' + String(d.result || '').slice(0, 200));
				break;
			case 'data':
				if (d.chunk_type === 'content' && d.content)
					text.textContent += d.content;
				if (d.thread_id && !S.thread)
					setThread(d.thread_id);
				if (d.chunk_type === 'final' || d.is_final) {
					final = d;
					if (d.content && !text.textContent)
						text.textContent = d.content;
					if (d.token_count)
						$('chat-tokens').textContent = 'Tokens this turn: ' + d.token_count;
					for (const q of d.followup_questions || [])
						$('chat-followups').append(el('button', {
							type: 'button',
							onclick: () => { $('chat-prompt').value = q; $('chat-prompt').focus(); },
						}, q));
				}
				break;
			case 'error':
				throw new Error('the turn failed: ' + (ev.error || 'no reason given'));
			case 'done':
				done = true;
				break;
			}
			log.scrollTop = log.scrollHeight;
		}
	}

	/* ---- conversations ---------------------------------------------- */

	async function loadThreads(ev) {
		if (ev)
			ev.preventDefault();
		const u = $('conv-user').value.trim();
		const j = await apiJson('GET', '/api/v1/conversations?limit=200' +
			(u ? '&user_id=' + enc(u) : ''));
		const tb = $('conv-threads');
		tb.replaceChildren();
		for (const t of j.threads || []) {
			const open = el('button', {
				type: 'button', class: 'link',
				onclick: () => openThread(t, tr),
			}, (t.preview || '(no message)').slice(0, 60));
			const tr = el('tr', { 'data-thread': t.thread_id },
				el('td', {}, open, el('br'), el('span', { class: 'small mono' },
					t.thread_id + ' · ' + t.owner)),
				el('td', {}, t.flow), el('td', { class: 'num' }, t.messages),
				el('td', { class: 'small' }, t.updated_at.replace('T', ' ').slice(0, 19)));
			tb.append(tr);
		}
		if (!tb.children.length)
			tb.append(el('tr', {}, el('td', { colspan: 4 }, 'No thread yet.')));
		status((j.threads || []).length + ' threads' + (j.user_id ? ' of ' + j.user_id : '') + '.');
	}

	async function openThread(t, tr) {
		for (const r of $('conv-threads').children)
			r.classList.toggle('sel', r === tr);
		$('conv-title').textContent = 'Thread ' + t.thread_id + ' (' + t.flow + ', ' + t.owner + ')';
		const cont = $('conv-continue');
		cont.hidden = false;
		cont.onclick = () => openThreadInChat(t.thread_id, t.flow).catch((e) => status(e.message, true));
		const msgs = await apiJson('GET', '/api/v1/conversations/' + enc(t.thread_id) + '?limit=1000');
		const ol = $('conv-messages');
		ol.replaceChildren();
		for (const m of msgs) {
			const li = messageItem(m);
			if (m.role === 'assistant') {
				const fb = el('span', { class: 'small' });
				const show = (v) => {
					fb.textContent = v === true ? ' · rated helpful' : v === false ?
						' · rated unhelpful' : '';
				};
				show(m.positive_feedback);
				const rate = (v) => apiJson('PUT', '/api/v1/messages/' + enc(m.message_id) + '/feedback', {
					thread_id: t.thread_id, message_id: m.message_id,
					user_id: m.user_id || undefined, positive_feedback: v,
				}).then(() => { show(v); status('Feedback saved.'); })
					.catch((e) => status(e.message, true));
				li.append(el('div', { class: 'row' },
					el('button', { type: 'button', onclick: () => rate(true),
						'aria-label': 'Rate this answer helpful' }, 'Helpful'),
					el('button', { type: 'button', onclick: () => rate(false),
						'aria-label': 'Rate this answer unhelpful' }, 'Unhelpful'), fb));
			}
			ol.append(li);
		}
		if (!msgs.length)
			ol.append(el('li', {}, 'No message.'));
	}

	/* ---- prompts ---------------------------------------------------- */

	async function loadRevisions() {
		const j = await apiJson('GET', '/api/v1/revisions/list');
		const sel = $('prompt-rev');
		sel.replaceChildren();
		const revs = j.revisions || [];
		for (const r of revs) {
			const id = typeof r === 'string' ? r : r.revision_id || r.name;
			sel.append(el('option', { value: id }, id));
		}
		if (!revs.length) {
			sel.append(el('option', { value: '' }, 'no revision'));
			$('prompt-file').replaceChildren();
			$('prompt-text').value = '';
			status('No prompt revision yet: create one with POST /api/v1/revisions/create or ingen init.');
			return;
		}
		await loadFiles();
	}

	async function loadFiles() {
		const rev = $('prompt-rev').value;
		const j = await apiJson('GET', '/api/v1/prompts/list/' + enc(rev));
		const sel = $('prompt-file');
		sel.replaceChildren();
		for (const f of j.files || [])
			sel.append(el('option', { value: f }, f));
		if ((j.files || []).length)
			await loadPrompt();
	}

	async function loadPrompt() {
		const rev = $('prompt-rev').value, file = $('prompt-file').value;
		$('prompt-msg').textContent = '';
		$('prompt-diff').replaceChildren();
		const r = await api('GET', '/api/v1/prompts/view/' + enc(rev) + '/' + enc(file));
		const t = await r.text();
		let j = null;
		try { j = JSON.parse(t); } catch (e) { j = null; }
		if (!r.ok)
			throw new ApiError(r.status, errorText(r.status, j, t));
		$('prompt-text').value = typeof j === 'string' ? j : (j && j.content) || '';
		$('prompt-hash').textContent = (r.headers.get('X-Prompt-Hash') || '').slice(0, 12);
		await loadVersions();
	}

	async function loadVersions() {
		const rev = $('prompt-rev').value, file = $('prompt-file').value;
		const path = enc(rev) + '/' + enc(file);
		const v = await apiJson('GET', '/api/v1/prompts/versions/' + path);
		let use = { versions: [] };
		try {
			use = await apiJson('GET', '/api/v1/prompts/usage/' + path);
		} catch (e) {
			status('Usage of the versions unavailable: ' + e.message, true);
		}
		const byHash = {};
		for (const u of use.versions || [])
			byHash[u.hash] = u;
		S.versions = v.versions || [];
		const tb = $('prompt-versions');
		tb.replaceChildren();
		$('diff-a').replaceChildren();
		$('diff-b').replaceChildren();
		S.versions.forEach((ver, i) => {
			const u = byHash[ver.hash] || { calls: 0, total_tokens: 0, thread_ids: [] };
			const threads = el('td', { class: 'small' });
			for (const id of u.thread_ids || [])
				threads.append(el('button', {
					type: 'button', class: 'link',
					onclick: () => openThreadInChat(id).catch((e) => status(e.message, true)),
				}, id.slice(0, 8)), ' ');
			tb.append(el('tr', { 'data-hash': ver.hash },
				el('td', { class: 'mono', title: ver.hash }, ver.hash.slice(0, 12) + (i === 0 ? ' (current)' : '')),
				el('td', { class: 'small' }, ver.written_at.replace('T', ' ').replace('Z', '')),
				el('td', { class: 'num' }, u.calls), el('td', { class: 'num' }, u.total_tokens),
				threads));
			const label = ver.hash.slice(0, 12) + ' · ' + ver.written_at;
			$('diff-a').append(el('option', { value: ver.hash, selected: i === 1 }, label));
			$('diff-b').append(el('option', { value: ver.hash, selected: i === 0 }, label));
		});
	}

	async function savePrompt() {
		const rev = $('prompt-rev').value, file = $('prompt-file').value;
		if (!rev || !file) {
			$('prompt-msg').textContent = 'Pick a revision and a file first.';
			return;
		}
		$('prompt-save').disabled = true;
		try {
			await apiJson('POST', '/api/v1/prompts/update/' + enc(rev) + '/' + enc(file),
				{ content: $('prompt-text').value });
			$('prompt-msg').textContent = 'Saved: the next turn uses it.';
			await loadPrompt();
			$('prompt-msg').textContent = 'Saved: the next turn uses it.';
		} catch (e) {
			$('prompt-msg').textContent = e.message;
		} finally {
			$('prompt-save').disabled = false;
		}
	}

	async function versionText(hash) {
		const rev = $('prompt-rev').value, file = $('prompt-file').value;
		const j = await apiJson('GET', '/api/v1/prompts/view/' + enc(rev) + '/' + enc(file) +
			'?hash=' + enc(hash));
		return typeof j === 'string' ? j : (j && j.content) || '';
	}

	/* A line diff (longest common subsequence): lines of a, b as ' ', '-', '+'. */
	function lineDiff(a, b) {
		const x = a.split('\n'), y = b.split('\n');
		const n = x.length, m = y.length;
		if (n * m > 4e6)
			return [['!', 'the files are too long to compare here']];
		const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
		for (let i = n - 1; i >= 0; i--)
			for (let j = m - 1; j >= 0; j--)
				L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
		const out = [];
		let i = 0, j = 0;
		while (i < n && j < m) {
			if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; }
			else if (L[i + 1][j] >= L[i][j + 1]) out.push(['-', x[i++]]);
			else out.push(['+', y[j++]]);
		}
		while (i < n) out.push(['-', x[i++]]);
		while (j < m) out.push(['+', y[j++]]);
		return out;
	}

	async function showDiff() {
		const a = $('diff-a').value, b = $('diff-b').value, pre = $('prompt-diff');
		pre.replaceChildren();
		if (!a || !b) {
			pre.textContent = 'There are not two versions to compare.';
			return;
		}
		const [ta, tb] = await Promise.all([versionText(a), versionText(b)]);
		let changed = 0;
		for (const [op, line] of lineDiff(ta, tb)) {
			if (op !== ' ')
				changed++;
			pre.append(el('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : null },
				op + ' ' + line + '\n'));
		}
		if (!changed)
			pre.replaceChildren('The two versions are the same.');
	}

	/* ---- flows ------------------------------------------------------ */

	async function loadFlows() {
		const j = await apiJson('GET', '/api/v1/workflows');
		const tb = $('flows-rows');
		tb.replaceChildren();
		for (const w of j.workflows || []) {
			const state = w.ready ? 'ready' : w.enabled === false ? 'disabled' :
				'missing ' + (w.missing_config || []).join(', ');
			tb.append(el('tr', {},
				el('td', {}, el('strong', {}, w.workflow), el('br'),
					el('span', { class: 'small' }, (w.supported_names || []).join(', '))),
				el('td', {}, w.origin || ''),
				el('td', {}, w.description || ''),
				el('td', { class: 'small' }, w.requires || (w.external_services || []).join(', ')),
				el('td', { class: w.ready ? 'ok' : 'bad' }, state)));
		}
		$('reload-box').hidden = !S.admin;
		if (S.admin)
			await reloadState();
	}

	async function reloadState() {
		const j = await apiJson('GET', '/api/v1/admin/reload');
		$('reload-msg').textContent = 'Generation ' + j.generation + ', ' + j.reloads +
			' reloads, ' + j.reload_failures + ' refused' +
			(j.last_error ? '; last refusal: ' + j.last_error : '');
		return j;
	}

	async function reload() {
		const btn = $('reload-go');
		btn.disabled = true;
		try {
			const before = await apiJson('POST', '/api/v1/admin/reload');
			$('reload-msg').textContent = 'Reloading…';
			for (let i = 0; i < 60; i++) {
				await new Promise((res) => setTimeout(res, 500));
				let j;
				try {
					j = await apiJson('GET', '/api/v1/admin/reload');
				} catch (e) {
					continue;       // a worker of the old generation went away
				}
				if (j.reload_failures > before.reload_failures) {
					$('reload-msg').textContent = 'Reload refused, generation ' + j.generation +
						' keeps serving: ' + (j.last_error || 'see the server log');
					return;
				}
				if (j.generation > before.generation) {
					$('reload-msg').textContent = 'Reloaded: generation ' + j.generation + ' serves.';
					S.loaded.chat = false;
					await loadFlows();
					$('reload-msg').textContent = 'Reloaded: generation ' + j.generation + ' serves.';
					return;
				}
			}
			$('reload-msg').textContent = 'No new generation within 30 s: see the server log.';
		} catch (e) {
			$('reload-msg').textContent = e.message;
		} finally {
			btn.disabled = false;
		}
	}

	/* ---- usage ------------------------------------------------------ */

	const fmt = (n) => Number(n || 0).toLocaleString('en');

	async function loadUsage(ev) {
		if (ev)
			ev.preventDefault();
		const by = $('usage-by').value, days = $('usage-days').value;
		const metric = $('usage-metric').value;
		const j = await apiJson('GET', '/api/v1/usage?by=' + enc(by) + '&days=' + enc(days));
		const rows = j.rows || [];
		const tot = { calls: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
		for (const r of rows)
			for (const k of Object.keys(tot))
				tot[k] += r[k] || 0;
		$('usage-totals').textContent = 'Last ' + days + ' days' +
			(j.user_id ? ' for ' + j.user_id : '') + ': ' + fmt(tot.calls) + ' calls, ' +
			fmt(tot.errors) + ' errors, ' + fmt(tot.total_tokens) + ' tokens (' +
			fmt(tot.prompt_tokens) + ' prompt, ' + fmt(tot.completion_tokens) + ' completion)';
		$('usage-totals').dataset.calls = tot.calls;
		$('usage-totals').dataset.tokens = tot.total_tokens;
		$('usage-key-h').textContent = by;
		const tb = $('usage-rows');
		tb.replaceChildren();
		for (const r of rows)
			tb.append(el('tr', {}, el('td', {}, r.key || '(none)'),
				...['calls', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens',
					'latency_ms_mean', 'latency_ms_max'].map((k) => el('td', { class: 'num' }, fmt(r[k])))));
		const shown = by === 'day' ? rows.slice().reverse() : rows.slice(0, 30);
		drawBars($('usage-chart'), shown, metric,
			$('usage-metric').selectedOptions[0].textContent + ' by ' + by);
	}

	/* A bar chart of rows[*][metric] by rows[*].key, as SVG elements. */
	function drawBars(box, rows, metric, title) {
		box.replaceChildren();
		const W = 900, H = 260, left = 64, bottom = 70, top = 24;
		const svg = document.createElementNS(SVG, 'svg');
		const mk = (tag, attrs, text) => {
			const e = document.createElementNS(SVG, tag);
			for (const [k, v] of Object.entries(attrs))
				e.setAttribute(k, v);
			if (text !== undefined)
				e.textContent = text;
			svg.append(e);
			return e;
		};
		svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
		svg.setAttribute('role', 'img');
		svg.setAttribute('aria-label', title + ': ' + rows.map((r) => (r.key || '(none)') +
			' ' + fmt(r[metric])).join(', '));
		mk('text', { x: left, y: 14 }, title);
		if (!rows.length) {
			mk('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No model call in this period.');
			box.append(svg);
			return;
		}
		const max = Math.max(1, ...rows.map((r) => r[metric] || 0));
		const plotH = H - bottom - top, step = (W - left - 8) / rows.length;
		mk('line', { class: 'axis', x1: left, y1: H - bottom, x2: W - 4, y2: H - bottom });
		for (const f of [0, 0.5, 1]) {
			const y = H - bottom - f * plotH;
			mk('line', { class: 'axis', x1: left - 4, y1: y, x2: left, y2: y });
			mk('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, fmt(Math.round(max * f)));
		}
		rows.forEach((r, i) => {
			const v = r[metric] || 0, h = (v / max) * plotH;
			const w = Math.max(1, Math.min(64, step * 0.7));
			const x = left + i * step + (step - w) / 2;
			const bar = mk('rect', { class: 'bar', x, y: H - bottom - h, width: w, height: h,
				'data-key': r.key || '', 'data-value': v });
			const t = document.createElementNS(SVG, 'title');
			t.textContent = (r.key || '(none)') + ': ' + fmt(v);
			bar.append(t);
			const lx = x + w / 2, ly = H - bottom + 12;
			mk('text', { x: lx, y: ly, 'text-anchor': 'end',
				transform: 'rotate(-35 ' + lx + ' ' + ly + ')' }, String(r.key || '(none)').slice(0, 16));
		});
		box.append(svg);
	}

	/* ---- start ------------------------------------------------------ */

	async function start() {
		$('login-form').addEventListener('submit', login);
		$('logout').addEventListener('click', () => logout());
		for (const b of document.querySelectorAll('#nav button'))
			b.addEventListener('click', () => showView(b.dataset.view));
		$('chat-form').addEventListener('submit', sendChat);
		$('chat-prompt').addEventListener('keydown', (ev) => {
			if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
				ev.preventDefault();
				sendChat();
			}
		});
		$('chat-new').addEventListener('click', () => {
			setThread(null);
			$('chat-thread').value = '';
			$('chat-log').replaceChildren();
			$('chat-steps').replaceChildren();
			$('chat-followups').replaceChildren();
			$('chat-prompt').focus();
		});
		$('chat-thread').addEventListener('change', () => {
			const id = $('chat-thread').value;
			if (id)
				openThreadInChat(id).catch((e) => status(e.message, true));
			else
				$('chat-new').click();
		});
		$('conv-form').addEventListener('submit', (ev) => loadThreads(ev).catch((e) => status(e.message, true)));
		$('prompt-rev').addEventListener('change', () => loadFiles().catch((e) => status(e.message, true)));
		$('prompt-file').addEventListener('change', () => loadPrompt().catch((e) => status(e.message, true)));
		$('prompt-save').addEventListener('click', savePrompt);
		$('diff-go').addEventListener('click', () => showDiff().catch((e) => status(e.message, true)));
		$('reload-go').addEventListener('click', reload);
		$('usage-form').addEventListener('submit', (ev) => loadUsage(ev).catch((e) => status(e.message, true)));
		window.addEventListener('hashchange', () => {
			if (!$('nav').hidden)
				showView(location.hash.slice(1));
		});
		setThread(null);
		/* authentication on: an API route without a token is a 401 */
		try {
			const r = await fetch('/api/v1/workflows', { credentials: 'omit', cache: 'no-store' });
			if (r.status === 401) {
				S.authOn = true;
				logout('Log in to use the console.');
				return;
			}
			if (!r.ok)
				throw new Error('the server answered ' + r.status + ' to /api/v1/workflows');
			await enter();
		} catch (e) {
			status('The console could not start: ' + e.message, true);
		}
	}

	document.addEventListener('DOMContentLoaded', start);
}());
