package live

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/swarmcast/swarmcast/content"
	"github.com/swarmcast/swarmcast/wire"
)

// Routes mounts the live routes of wire/live.go.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+wire.PathLiveChannels, s.handleCreate)
	mux.HandleFunc("GET "+wire.PathLiveChannels, func(w http.ResponseWriter, _ *http.Request) { wire.WriteJSON(w, s.Channels()) })
	mux.HandleFunc("GET "+wire.PathLiveChannel, s.handleChannel)
	mux.HandleFunc("POST "+wire.PathLiveEnd, s.handleEnd)
	mux.HandleFunc("POST "+wire.PathLiveRotateKey, s.handleRotateKey)
	mux.HandleFunc("POST "+wire.PathLiveBroadcasters, s.handleAllowBroadcaster)
	mux.HandleFunc("POST "+wire.PathLiveIngestAuth, s.handleIngestAuth)
	mux.HandleFunc("POST "+wire.PathLiveState, s.handleState)
	mux.HandleFunc("POST "+wire.PathLiveChains, s.handleStart)
	mux.HandleFunc("GET "+wire.PathLiveGenesis, s.handleGenesis)
	mux.HandleFunc("POST "+wire.PathLiveEntries, s.handleAppend)
	mux.HandleFunc("GET "+wire.PathLiveEntries, s.handleEntries)
	mux.HandleFunc("GET "+wire.PathLiveKey, s.handleKey)
	mux.HandleFunc("POST "+wire.PathBTRLog, s.handleBTRAppend)
	mux.HandleFunc("GET "+wire.PathBTRLog, s.handleBTRLog)
	mux.HandleFunc("POST "+wire.PathBTRAgreed, s.handleBTRAgreed)
	mux.HandleFunc("GET "+wire.PathBTRAgreed, s.handleBTRAgreement)
	mux.HandleFunc("POST "+wire.PathBTRRebuttal, s.handleBTRRebuttal)
	mux.HandleFunc("GET "+wire.PathLiveChannelMinutes, s.handleChannelMinutes)
	mux.HandleFunc("GET "+wire.PathAccountMinutes, s.handleAccountMinutes)
	mux.HandleFunc("POST "+wire.PathRelayJudge, s.handleRelayStatement)
	mux.HandleFunc("GET "+wire.PathRelayJudge, s.handleRelayJudgeCases)
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	who, err := s.acct.Caller(r)
	if err != nil {
		s.acct.WriteError(w, err)
		return
	}
	if err := s.mayCreate(r.Context(), who); err != nil {
		wire.WriteErr(w, err)
		return
	}
	var req wire.CreateChannelRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	out, err := s.CreateChannel(r.Context(), who.ID, req)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

func channelParam(r *http.Request) wire.ChannelID { return wire.ChannelID(r.PathValue("channel")) }

func (s *Service) handleChannel(w http.ResponseWriter, r *http.Request) {
	info, err := s.Channel(channelParam(r))
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

func (s *Service) handleEnd(w http.ResponseWriter, r *http.Request) {
	who, err := s.acct.Caller(r)
	if err != nil {
		s.acct.WriteError(w, err)
		return
	}
	info, err := s.EndChannel(r.Context(), who, channelParam(r))
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, info)
}

func (s *Service) handleRotateKey(w http.ResponseWriter, r *http.Request) {
	who, err := s.acct.Caller(r)
	if err != nil {
		s.acct.WriteError(w, err)
		return
	}
	out, err := s.RotateKey(r.Context(), who, channelParam(r))
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

func (s *Service) handleAllowBroadcaster(w http.ResponseWriter, r *http.Request) {
	if err := s.acct.AuthorizeAdmin(r); err != nil {
		s.acct.WriteError(w, err)
		return
	}
	var req wire.AllowBroadcasterRequest
	if !wire.DecodeJSONLimit(w, r, &req, wire.MaxSmallJSONBody) {
		return
	}
	if err := s.AllowBroadcaster(r.Context(), req.Username); err != nil {
		wire.WriteErr(w, err)
		return
	}
	s.log.Info("live broadcaster allowed", "username", req.Username)
	wire.WriteEmpty(w)
}

// originJSON authenticates an origin request and decodes its JSON body.
func (s *Service) originJSON(w http.ResponseWriter, r *http.Request, what string, limit int64, v any) (wire.NodeID, bool) {
	origin, body, ok := s.net.OriginRequest(w, r, what, limit)
	if !ok {
		return "", false
	}
	if err := json.Unmarshal(body, v); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "%s: malformed JSON body: %v", what, err)
		return "", false
	}
	return origin, true
}

func (s *Service) handleIngestAuth(w http.ResponseWriter, r *http.Request) {
	var req wire.IngestAuthRequest
	origin, ok := s.originJSON(w, r, "live ingest authorize", wire.MaxSmallJSONBody, &req)
	if !ok {
		return
	}
	// The store is the authority on stream keys: another coordinator on
	// it may have created the channel or rotated its key since we loaded.
	if err := s.SyncChannels(r.Context()); err != nil {
		wire.WriteErr(w, err)
		return
	}
	out, err := s.AuthorizeIngest(origin, req.StreamKey)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteJSON(w, out)
}

func (s *Service) handleState(w http.ResponseWriter, r *http.Request) {
	var rep wire.ChannelStateReport
	origin, ok := s.originJSON(w, r, "live state", wire.MaxSmallJSONBody, &rep)
	if !ok {
		return
	}
	if err := s.ReportState(r.Context(), origin, channelParam(r), rep); err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteEmpty(w)
}

func (s *Service) handleStart(w http.ResponseWriter, r *http.Request) {
	var req wire.LiveStartRequest
	origin, ok := s.originJSON(w, r, "live chain start", maxGenesisBody, &req)
	if !ok {
		return
	}
	if _, err := s.StartChain(r.Context(), origin, req); err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteEmpty(w)
}

// chainParam parses {chain} or answers 400.
func chainParam(w http.ResponseWriter, r *http.Request) (content.VideoID, bool) {
	id, err := content.ParseVideoID(r.PathValue("chain"))
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "chain: %v", err)
		return id, false
	}
	return id, true
}

func (s *Service) handleGenesis(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	g, err := s.Genesis(id)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(g)
}

func (s *Service) handleAppend(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	origin, body, ok := s.net.OriginRequest(w, r, "live entry", maxEntryBody)
	if !ok {
		return
	}
	if err := s.AppendEntry(r.Context(), origin, id, body); err != nil {
		wire.WriteErr(w, err)
		return
	}
	wire.WriteEmpty(w)
}

func (s *Service) handleEntries(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, err := strconv.ParseUint(q.Get("from"), 10, 64)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, "entries: from=%q: want the first entry's Seq (0 or more)", q.Get("from"))
		return
	}
	var waitMS int
	if v := q.Get("wait_ms"); v != "" {
		if waitMS, err = strconv.Atoi(v); err != nil || waitMS < 0 || waitMS > MaxWaitMS {
			wire.WriteError(w, http.StatusBadRequest, "entries: wait_ms=%q: want 0..%d", v, MaxWaitMS)
			return
		}
	}
	entries, err := s.Entries(r.Context(), id, from, time.Duration(waitMS)*time.Millisecond)
	if err != nil {
		if err == errTooManyWaiters {
			w.Header().Set("Retry-After", "1")
		}
		wire.WriteErr(w, err)
		return
	}
	w.Header().Set("Content-Type", wire.ContentTypeLiveEntries)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(wire.EncodeLiveEntries(entries))
}

func (s *Service) handleKey(w http.ResponseWriter, r *http.Request) {
	id, ok := chainParam(w, r)
	if !ok {
		return
	}
	key, err := s.key(id)
	if err != nil {
		wire.WriteErr(w, err)
		return
	}
	if err := s.acct.AuthorizeKey(r, id); err != nil {
		s.acct.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(key)
}
