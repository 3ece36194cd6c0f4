package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"peernode/api"
	"peernode/protocols/storage"
	"peernode/protocols/storage/store"
)

// The backend serves the blob routes too.
var _ api.Blobs = backend{}

// blobError marks a storage error for the API's status codes.
func blobError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrBadID), errors.Is(err, store.ErrBadRange):
		return api.Mark(err, api.ErrBadRequest)
	case errors.Is(err, store.ErrNotFound):
		return api.Mark(err, api.ErrNotFound)
	case errors.Is(err, store.ErrTooLarge):
		return api.Mark(err, api.ErrTooLarge)
	case errors.Is(err, store.ErrQuota):
		return api.Mark(err, api.ErrInsufficientStorage)
	case errors.Is(err, ErrNoHolder), errors.Is(err, ErrTooFewHolders):
		return api.Mark(err, api.ErrUnavailable)
	case errors.Is(err, store.ErrBadData), errors.Is(err, storage.ErrMalformed):
		return api.Mark(err, api.ErrBadGateway)
	}
	return err
}

func parseBlobID(s string) (cid.Cid, error) {
	id, err := store.ParseID(s)
	if err != nil {
		return cid.Undef, api.Mark(err, api.ErrBadRequest)
	}
	return id, nil
}

func (b backend) PutBlob(ctx context.Context, r io.Reader, size int64, replicas int) (api.PutResult, error) {
	res, err := b.n.PutBlob(ctx, r, size, replicas)
	if res.Info.ID == cid.Undef {
		return api.PutResult{}, blobError(err)
	}
	out := api.PutResult{ID: res.Info.ID.String(), Size: res.Info.Size, Holders: []string{}}
	for _, p := range res.Holders {
		out.Holders = append(out.Holders, p.String())
	}
	if err != nil {
		return out, blobError(fmt.Errorf("%w (the copies made stay; put again with fewer --replicas, or once more nodes are up)", err))
	}
	return out, nil
}

func (b backend) OpenBlob(ctx context.Context, s string) (api.Blob, error) {
	id, err := parseBlobID(s)
	if err != nil {
		return nil, err
	}
	blob, err := b.n.OpenBlob(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNoHolder) {
			err = api.Mark(err, api.ErrNotFound)
		}
		return nil, blobError(err)
	}
	return apiBlob{blob}, nil
}

func (b backend) ListBlobs() ([]api.BlobInfo, error) {
	infos, err := b.n.blobs.store.List()
	if err != nil {
		return nil, err
	}
	out := make([]api.BlobInfo, len(infos))
	for i, in := range infos {
		out[i] = api.BlobInfo{ID: in.ID.String(), Size: in.Size, Stored: in.Stored.UTC(), Local: true}
	}
	return out, nil
}

func (b backend) DeleteBlob(s string) error {
	id, err := parseBlobID(s)
	if err != nil {
		return err
	}
	return blobError(b.n.blobs.store.Delete(id))
}

func (b backend) CheckBlob(ctx context.Context, s string) (api.BlobCheck, error) {
	id, err := parseBlobID(s)
	if err != nil {
		return api.BlobCheck{}, err
	}
	res, err := b.n.blobs.store.Check(ctx, id)
	if err != nil {
		return api.BlobCheck{}, blobError(err)
	}
	checks.WithLabelValues(res.Status.String()).Inc()
	return api.BlobCheck{ID: s, Size: res.Size, Result: res.Status.String(), Problem: res.Problem, MovedTo: res.MovedTo}, nil
}

// apiBlob adapts a Blob to the API.
type apiBlob struct{ b *Blob }

func (a apiBlob) Info() api.BlobInfo {
	info := api.BlobInfo{ID: a.b.ID.String(), Size: a.b.Size, Local: a.b.Local}
	if a.b.Local {
		info.Stored = a.b.Stored.UTC()
	}
	return info
}

func (a apiBlob) Range(ctx context.Context, off, length int64) (io.ReadCloser, error) {
	r, err := a.b.Range(ctx, off, length)
	if err != nil {
		return nil, blobError(err)
	}
	return markedReader{r}, nil
}

// markedReader marks its read errors for the API.
type markedReader struct{ io.ReadCloser }

func (m markedReader) Read(p []byte) (int, error) {
	n, err := m.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = blobError(err)
	}
	return n, err
}
